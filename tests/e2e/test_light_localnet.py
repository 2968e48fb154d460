"""A merchant's light node on a real localnet: ``agora localnet`` with four validators
and a standby, ``agora light`` (a subprocess) with node0 as primary and node1 as
witness, watching the demo merchant. The wallet works through the light node
unchanged (orders placed, shipped, confirmed, reviewed, every transaction sent through
it); its answers equal a full node's; the watch prints the merchant's open orders;
the light node keeps following across a validator-set change voted in with
``agora validator``; a restart resumes from the stored headers; and a trusted root
older than the trusting period is refused with a clear message.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_governance_localnet import FAST, WAIT, Localnet, cli_ok, vote_through, wait_change

from node import localnet
from node.home import Home
from node.rpc.client import RPCClient

REPO = Path(__file__).resolve().parents[2]


class Light:
    """``agora light`` in a subprocess."""

    def __init__(self, home: Path, net: Localnet, port: int) -> None:
        self.home = home
        self.net = net
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.out = home.parent / f"{home.name}.out"
        self.client = RPCClient(self.url + "/", timeout=10.0)

    def start(self, *extra: str) -> None:
        merchant = next(a["address"] for a in json.loads(
            (self.net.home / "localnet.json").read_text())["accounts"] if a["name"] == "merchant")
        with open(self.out, "a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli", "light", "--home", str(self.home), "--genesis",
                 str(self.net.home / "genesis.json"), "--primary", self.net.infos[0].rpc,
                 "--witness", self.net.infos[1].rpc, "--rpc-listen", f"127.0.0.1:{self.port}",
                 "--watch", merchant, *extra],
                cwd=REPO, env=self.net.env, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    async def status(self) -> dict[str, Any]:
        return await self.client.call("light_status")

    async def height(self) -> int:
        return (await self.status())["height"]


def wallet(net: Localnet, light: Light, *args: str) -> dict[str, Any]:
    """``agora ... --node LIGHT`` from the localnet's directory (its demo keys)."""
    proc = subprocess.run([sys.executable, "-m", "cli", *args, "--node", light.url, "--json"],
                          cwd=net.home, env={**net.env}, capture_output=True, text=True,
                          timeout=WAIT)
    assert proc.returncode == 0, f"agora {' '.join(args)}: {proc.stderr}{proc.stdout}"
    out = json.loads(proc.stdout)
    assert out.get("ok", True) is True, out
    return out


def strip(x: Any, ignore: tuple[str, ...] = ("height",)) -> Any:
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in ignore}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x


@pytest.mark.timeout(600)
async def test_a_merchant_light_node_on_a_real_localnet(tmp_path: Path) -> None:
    home = tmp_path / "localnet"
    base = localnet.free_base_port(14)
    init = subprocess.run([sys.executable, "-m", "cli", "localnet", "init", "--validators",
                           "4", "--standby", "1", "--home", str(home), "--base-port", str(base)],
                          cwd=REPO, capture_output=True, text=True, timeout=WAIT)
    assert init.returncode == 0, init.stderr
    for info in localnet.node_infos(home):
        h = Home(info.home)
        h.write_config(h.config().model_copy(update={"consensus": FAST}))
    net = Localnet(home)
    light = Light(tmp_path / "light", net, base + 12)
    try:
        net.start()
        await net.wait_heights(range(5), 2)
        light.start()
        await net.until("the light node verifies a header", lambda: light.height())
        full = net.clients[2]  # neither the primary nor the witness

        # -- the wallet through the light node: a whole order, and a review
        placed = wallet(net, light, "order", "place", "1", "--from", "buyer")
        order = str(placed["order_id"])
        assert placed["state"] == "paid"
        await net.until("the watch shows the paid order", lambda: _has(
            light, f"Order {order} is paid"))
        assert wallet(net, light, "order", "ship", order, "--from", "merchant",
                      "--tracking", "LIGHT-1")["state"] == "shipped"
        assert wallet(net, light, "order", "confirm", order, "--from", "buyer",
                      "--waive-return")["state"] == "completed"
        wallet(net, light, "review", "post", order, "--from", "buyer", "--rating", "4",
               "--text", "Checked by proof")
        shown = wallet(net, light, "order", "show", order)
        assert shown["state"] == "completed"
        await net.until("the watch shows the order completed", lambda: _has(
            light, f"Order {order} has ended: completed"))

        # -- the same values as a full node, at the same height
        async def caught_up() -> bool:
            return await light.height() >= await net.height(2)
        tip = await net.height(2)
        await net.until("the light node reaches the full node's head", caught_up)
        lc = light.client
        merchant = next(a["address"] for a in json.loads(
            (home / "localnet.json").read_text())["accounts"] if a["name"] == "merchant")
        buyer = next(a["address"] for a in json.loads(
            (home / "localnet.json").read_text())["accounts"] if a["name"] == "buyer")
        assert tip >= 1
        for ask in (lambda c: c.order(int(order)), lambda c: c.listing(1),
                    lambda c: c.account(buyer), lambda c: c.token_balance(buyer),
                    lambda c: c.reviews(merchant=merchant), lambda c: c.merchant(merchant),
                    lambda c: c.reviews(order_id=int(order))):
            assert strip(await ask(lc)) == strip(await ask(full))
        assert (await light.status())["caught"] == []

        # -- a validator-set change: the standby is voted in; the light node follows
        standby = net.infos[4]
        cli_ok(net.agora("validator", "propose-add", "--from", "node0", "--validator",
                         "node4", "--power", "10"))
        proposal = (await net.call(0, "proposals", state="open"))["items"][0]["id"]
        await vote_through(net, proposal, ["node1", "node2"])
        joined = await wait_change(net, standby.validator, None)

        async def past_change() -> bool:
            return await light.height() >= joined + 3
        await net.until("the light node follows past the set change", past_change)
        header = await lc.header()
        assert header["height"] >= joined + 3
        assert header == await full.header(header["height"])
        # The verified head is signed by the new set, the standby in it.
        new_set = await net.call(2, "validators", height=header["height"])
        assert header["validators_hash"] == new_set["hash"]
        assert standby.validator in {v["address"] for v in new_set["validators"]}
        assert (await lc.commit(header["height"]))["block_hash"] == header["hash"]

        # -- a restart resumes from the stored headers
        before = await light.height()
        kept = (await light.status())["headers_kept"]
        light.stop()
        light.start()
        await net.until("the restarted light node answers", lambda: light.height())
        assert "resumes at height" in light.output() or "verified height" in light.output()
        after = await light.status()
        assert after["height"] >= before and after["headers_kept"] >= kept
        assert f"verified height {before}" in light.output() or \
            int(light.output().rsplit("verified height ", 1)[1].split()[0]) >= before

        # -- a trusted root older than the trusting period is refused, clearly
        refused = subprocess.run(
            [sys.executable, "-m", "cli", "light", "--home", str(tmp_path / "light2"),
             "--genesis", str(home / "genesis.json"), "--primary", net.infos[0].rpc,
             "--trusting-period", "2s"],
            cwd=REPO, env=net.env, capture_output=True, text=True, timeout=WAIT)
        assert refused.returncode == 1
        assert "trusting period" in refused.stderr and "--trust-height" in refused.stderr
    finally:
        light.stop()
        await light.client.close()
        await net.close()


async def _has(light: Light, text: str) -> bool:
    return text in light.output()


if os.environ.get("AGORA_LIGHT_E2E_DEBUG"):  # pragma: no cover - a debugging aid
    print(Path(__file__))
