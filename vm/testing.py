"""A test harness for contracts, in the spirit of Titanoboa's ``boa.load``.

    env = Env()
    token = env.load_contract("vm/contracts/token.agc")
    token.transfer(bob, 10, sender=alice)          # results decoded by the ABI
    shop = env.deploy_commerce()                   # token, catalog, escrow, reviews, wired
    with pytest.raises(Reverted, match="insufficient"):
        token.transfer(bob, 10**30, sender=alice)
    env.time_ms += 7 * 24 * 3600 * 1000            # move block time

Contracts run on the real VM against an in-memory world state that persists across
calls (no blocks, no fees, no nonces: the executor's business). Every sender is funded
on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.kv import MemoryKV
from storage.state import StateTree

from .compiler import Compiled, compile_file, compile_source
from .compiler.abi import decode_event, decode_value, encode_value
from .executor import contract_address
from .interpreter import BlockEnv, Machine, Status
from .program import Program, load_program
from .world import WorldState

DEFAULT_SENDER = bytes.fromhex("a1" * 20)
FUNDING = 10**30


class Reverted(Exception):  # noqa: N818 - named for what the contract did
    """A call did not succeed: ``status`` (reverted, out_of_gas, error) and ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Env:
    """An in-memory chain state with a movable block height and time."""

    def __init__(self, time_ms: int = 1_767_225_600_000, height: int = 1,
                 gas: int = 10_000_000) -> None:
        self.world = WorldState(StateTree(MemoryKV()), lambda a, code: _program(code))
        self.time_ms = time_ms
        self.height = height
        self.gas = gas
        self._nonce = 0
        self._funded: set[bytes] = set()

    def fund(self, address: bytes, amount: int = FUNDING) -> None:
        self.world.add_balance(address, amount)
        self._funded.add(address)

    def balance(self, address: bytes) -> int:
        return self.world.balance(address)

    def _machine(self, sender: bytes) -> Machine:
        if sender not in self._funded:
            self.fund(sender)
        return Machine(self.world, BlockEnv(self.height, self.time_ms), sender)

    def deploy(self, compiled: Compiled, *args: Any, sender: bytes = DEFAULT_SENDER,
               value: int = 0, at: bytes | None = None) -> Contract:
        """Deploy with constructor ``args``; at ``at`` (a fixed address, as genesis
        places the commerce contracts) or at the next address of ``sender``."""
        init = next((m for m in compiled.abi["methods"] if m["name"] == "__init__"), None)
        inputs = init["inputs"] if init else []
        encoded = encode_inputs("__init__", inputs, args)
        self._nonce += 1
        address = contract_address(sender, self._nonce) if at is None else at
        if self.world.code(address) is not None:
            raise ValueError(f"a contract is already deployed at {address.hex()}")
        out = self._machine(sender).deploy(sender, address, _program(compiled.code),
                                           encoded, value, self.gas)
        self.world.forget_journal()  # one transaction
        if out.status != Status.OK:
            raise Reverted(out.status, out.reason)
        return Contract(self, address, compiled)

    def load_contract(self, path: str | Path, *args: Any, **kw: Any) -> Contract:
        return self.deploy(compile_file(path), *args, **kw)

    def loads(self, source: str, *args: Any, **kw: Any) -> Contract:
        return self.deploy(compile_source(source), *args, **kw)

    def deploy_commerce(self, **kw: Any) -> Any:
        """The whole commerce set (token, catalog, escrow, reviews) at its genesis
        addresses, wired to each other: a :class:`vm.contracts.Commerce`. Keywords go
        to :func:`vm.contracts.deploy_commerce` (``limits``, ``token_supply`` ...)."""
        from .contracts import deploy_commerce  # the contracts build on this module

        return deploy_commerce(self, **kw)


@functools.lru_cache(maxsize=256)
def _program(code: bytes) -> Program:
    """Code decoded once (as the executor caches it): the big contracts take longer to
    decode than to run a call."""
    return load_program(code)


def encode_inputs(name: str, inputs: list[dict], args: tuple) -> list[bytes]:
    """A method's arguments, encoded by its ABI ``inputs`` (TypeError on a wrong count)."""
    if len(args) != len(inputs):
        raise TypeError(f"{name} takes {len(inputs)} argument(s), got {len(args)}")
    return [encode_value(i["type"], a) for i, a in zip(inputs, args, strict=True)]


@dataclass(frozen=True)
class CallResult:
    """How a call went: status (vm.interpreter.Status), decoded return value, gas used,
    decoded events as (name, fields), revert reason."""

    status: int
    value: object
    gas_used: int
    events: list[tuple[str, dict[str, object]]]
    reason: str


class Contract:
    """A deployed contract: its ABI methods are Python methods (``sender=``, ``value=``,
    ``gas=`` keywords). ``last_events`` holds the decoded events of the last call."""

    def __init__(self, env: Env, address: bytes, compiled: Compiled) -> None:
        self.env = env
        self.address = address
        self.compiled = compiled
        self.last_events: list[tuple[str, dict[str, object]]] = []
        self.last_gas_used = 0
        self._events = {e["name"]: e["fields"] for e in compiled.abi["events"]}
        for method in compiled.abi["methods"]:
            if method["name"] != "__init__":
                setattr(self, method["name"], self._method(method))

    if TYPE_CHECKING:
        # The ABI's methods are set on each instance above; to a type checker they are
        # any attribute the class does not define (at run time a missing one is still
        # an AttributeError).
        def __getattr__(self, name: str) -> Callable[..., Any]: ...

    def _method(self, method: dict):  # -> a bound caller
        def call(*args: Any, sender: bytes = DEFAULT_SENDER, value: int = 0,
                 gas: int | None = None) -> object:
            return self.call(method, args, sender=sender, value=value, gas=gas)
        call.__name__ = method["name"]
        return call

    def method_abi(self, name: str) -> dict:
        for m in self.compiled.abi["methods"]:
            if m["name"] == name and name != "__init__":
                return m
        raise KeyError(f"the contract has no method {name!r}")

    def call(self, method: dict, args: tuple, *, sender: bytes, value: int,
             gas: int | None) -> object:
        result = self.invoke(method, args, sender=sender, value=value, gas=gas)
        if result.status != Status.OK:
            raise Reverted(result.status, result.reason)
        return result.value

    def invoke(self, method: dict, args: tuple, *, sender: bytes, value: int,
               gas: int | None) -> CallResult:
        """Call and report how it went, whatever the outcome (the CLI's view)."""
        env = self.env
        encoded = encode_inputs(method["name"], method["inputs"], args)
        world = env.world
        machine = env._machine(sender)
        first_event = world.event_count()
        budget = env.gas if gas is None else gas
        out = machine.call(sender, self.address, method["name"].encode(), encoded, value,
                           budget)
        self.last_gas_used = budget - out.gas_left
        new = world.events[first_event:]
        del world.events[first_event:]
        world.forget_journal()
        if out.status != Status.OK:
            self.last_events = []
            return CallResult(out.status, None, self.last_gas_used, [], out.reason)
        self.last_events = [(e.name, decode_event(self._events[e.name], e.data))
                            for e in new if e.name in self._events]
        result = None if method["output"] is None else decode_value(
            method["output"], out.data, self.compiled.abi.get("records"))
        return CallResult(out.status, result, self.last_gas_used, self.last_events, "")
