"""Deterministic contract VM: interpreter with gas, assembler, compiler, executor, contracts."""
