"""``agora query ...``: the node's read methods, thin and readable."""

from __future__ import annotations

from typing import Any

from chain.address import address_to_text

from .actions import Report, balance
from .amounts import format_amount
from .errors import BadInput
from .explain import when
from .session import Session
from .text import one_line


def status(s: Session) -> Report:
    st = s.status()
    contracts = s.contracts()
    lines = [f"Node {st['moniker'] or st['node_id']} at {s.node_url} ({st['mode']}), chain "
             f"{st['chain_id']}",
             f"  height {st['height']}, block {st['latest_block_hash'][:16]}... at "
             f"{when(st['latest_block_time_ms'])}" + (" (syncing)" if st["syncing"] else ""),
             f"  peers {st['peers']}; mempool {st['mempool']['count']} transaction(s)"]
    if st.get("validator"):
        lines.append(f"  validator {st['validator']}")
    lines.append("  contracts:")
    for name, c in contracts.items():
        lines.append(f"    {name:8} {c['address']}")
    data = dict(st)
    data["contracts"] = {n: c["address"] for n, c in contracts.items()}
    data["node_url"] = s.node_url
    return Report(data, lines)


def block(s: Session, height: int | None) -> Report:
    b = s.rpc("block", **({"height": height} if height is not None else {}))
    h = b["header"]
    lines = [f"Block {h['height']} {b['hash']}",
             f"  time {when(h['time_ms'])}; proposer {h['proposer']}; {h['tx_count']} tx(s)"]
    for tx in b["txs"][:50]:
        act = tx["action"]
        lines.append(f"    {tx['hash']}  {tx['sender']}  {_action_text(act)}")
    if len(b["txs"]) > 50:
        lines.append(f"    ... {len(b['txs']) - 50} more (--json shows all)")
    return Report(b, lines)


def tx(s: Session, tx_hash: str) -> Report:
    t = s.rpc("tx", hash=tx_hash)
    r = t["receipt"]
    act = t["tx"]["action"]
    lines = [f"Transaction {t['hash']}: {r['status']} in block {t['height']} "
             f"(position {t['index']})",
             f"  from {t['tx']['sender']}, nonce {t['tx']['nonce']}, gas used {r['gas_used']:,}",
             f"  action: {_action_text(act)}"]
    if r["reason"]:
        lines.append(f"  reason: {one_line(str(r['reason']))}")
    for e in r["events"]:
        fields = one_line(", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
                                     for k, v in (e.get("fields") or {}).items()), 1_000)
        lines.append(f"  event {e.get('contract_name') or e['contract']}.{e['name']}({fields})")
    return Report(t, lines)


def _action_text(act: dict[str, Any]) -> str:
    if act.get("type") == "transfer":
        return f"transfer {format_amount(int(act['amount']), 18)} to {act['to']}"
    if act.get("type") == "call":
        args = ", ".join(f"{k}={v}" for k, v in (act.get("decoded_args") or {}).items())
        paid = (f" paying {format_amount(int(act['value']), 18)}" if int(act["value"])
                else "")
        return f"call {act.get('contract_name') or act['contract']}.{act['method']}({args}){paid}"

    return str(act.get("type"))


def account(s: Session, who: str) -> Report:
    return balance(s, who)


def history(s: Session, who: str, limit: int = 20) -> Report:
    address = s.address(who)
    page = s.rpc("account_history", address=address_to_text(address), limit=limit)
    lines = [f"Latest transactions of {s.who(address)}:"]
    for item in page["items"]:
        lines.append(f"  block {item['height']}  {item['hash']}")
    if not page["items"]:
        lines.append("  none")
    return Report(page, lines)


def merchant(s: Session, who: str) -> Report:
    address = s.address(who, "merchant")
    m = s.rpc("merchant", merchant=address_to_text(address))
    st, rep = m["stats"], m["reputation"]
    avg = m["average_rating"]
    lines = [f"Merchant {s.who(address)}: {m['listings']} listing(s), {m['orders']} order(s)",
             f"  reviews {rep['reviews']}" + (f", average {avg}/5" if avg is not None else "")
             + f" from {rep['reviewers']} buyer(s)",
             f"  completed {st['completed']}, refunded {st['refunded']}, declined "
             f"{st['declined']}, not shipped {st['not_shipped']}, settled {st['settled']}, "
             f"disputes {st['disputes']} (lost {st['disputes_lost']}); volume "
             f"{s.coin(int(st['volume']))}"]
    if m["orders_by_state"]:
        lines.append("  orders now: " + ", ".join(f"{k} {v}"
                                                  for k, v in m["orders_by_state"].items()))
    return Report(m, lines)


def events(s: Session, contract: str, *, name: str | None, from_height: int | None,
           to_height: int | None, limit: int = 50) -> Report:
    if not contract:
        raise BadInput("name a contract: token, catalog, escrow, reviews or an address")
    params: dict[str, Any] = {"contract": contract, "limit": limit}
    for k, v in (("name", name), ("from_height", from_height), ("to_height", to_height)):
        if v is not None:
            params[k] = v
    page = s.rpc("events", **params)
    lines = [f"{len(page['items'])} event(s) of {page.get('contract_name') or contract}"
             + (f" named {name}" if name else "")
             + (" (more: raise --limit)" if page.get("next") else "") + ":"]
    for e in page["items"]:
        fields = one_line(", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
                                     for k, v in (e.get("fields") or {}).items()), 1_000)
        lines.append(f"  block {e['height']}  {e['name']}({fields})")
    return Report(page, lines)
