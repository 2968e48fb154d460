"""Exceptions of the vm package.

As everywhere in Agora, errors are split by whose fault they are. A
:class:`RemoteError` means what we were handed is bad: a block that breaks the state
transition rules (reject it and blame its proposer), contract code refused at deploy, an
assembly source with a mistake. A :class:`LocalError` means our own code misused the VM.

What goes wrong *inside* a contract is not an exception of this package at all: it
ends the call with a failed :class:`chain.block.Receipt` (reverted, out of gas, error)
and the fee is still paid.
"""

from __future__ import annotations


class VMError(Exception):
    """Base of every error raised by the vm package."""


class RemoteError(VMError):
    """Input from outside (a block, a transaction, code, a source file) is invalid."""


class LocalError(VMError):
    """Our own code misused the vm package."""


class InvalidCode(RemoteError):
    """Bytecode refused by validation; ``offset`` is the byte where the problem is."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"invalid code at offset {offset}: {reason}")
        self.offset = offset
        self.reason = reason


class AssemblyError(RemoteError):
    """An ``.asm`` source does not assemble; ``line`` is 1-based."""

    def __init__(self, line: int, reason: str, source: str = "<asm>") -> None:
        super().__init__(f"{source}:{line}: {reason}")
        self.line = line
        self.reason = reason


class InvalidTx(RemoteError):
    """A transaction cannot be applied to the current state at all: wrong chain, bad
    nonce, a fee it cannot pay, a gas limit below its intrinsic cost. In a block this
    makes the block invalid; at the mempool it is refused."""


class InvalidBlock(RemoteError):
    """A block breaks the state transition rules (names the transaction if one does)."""


class WrongStore(VMError):
    """The database does not belong to this genesis, or its state and blocks disagree:
    an operator's mistake (wrong data directory or genesis file) to report, not data
    to run on."""


class NotExecuted(LocalError):
    """commit() was asked for a block that was never executed against this state."""
