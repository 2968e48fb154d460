"""Simplified Chinese (zh-CN) for every text the explorer shows, keyed by its English.
``{name}`` placeholders stay as they are; tests render every page in Chinese and fail
on any text missing here."""

ZH: dict[str, str] = {
    # ---- layout
    "Agora explorer": "Agora 区块浏览器",
    "Skip to the content": "跳到正文",
    "Main": "主导航",
    "Validators": "验证者",
    "Search the chain": "搜索链上内容",
    "Height, hash, address, name, order or listing": "高度、哈希、地址、名称、订单号或商品号",
    "Search": "搜索",
    "Language": "语言",
    "Every fact on these pages is read from the node's public API{label}.":
        "本页所有内容都读自节点的公开接口{label}。",
    "Times are shown in your time zone when JavaScript runs, otherwise in UTC.":
        "启用 JavaScript 时按您所在时区显示时间，否则显示 UTC 时间。",
    "Not shown": "无法显示",
    "Back to the latest blocks": "返回最新区块",
    "nobody": "无",
    # ---- errors
    "This page could not be shown because of an error in the explorer; the node's log has "
    "the details.": "浏览器内部出错，无法显示此页；详情见节点日志。",
    "The node this explorer reads does not serve this (a light node cannot prove it).":
        "本浏览器所读取的节点不提供此内容（轻节点无法证明它）。",
    "The node did not answer: {reason}": "节点没有响应：{reason}",
    "The node refused the question: {reason}": "节点拒绝了该查询：{reason}",
    "{what} must be a whole number, like 12.": "{what}必须是整数，例如 12。",
    "A height": "高度", "A listing id": "商品编号", "An order id": "订单编号",
    "A group id": "团购编号",
    "That is not an address: an address starts with agora1 and has 44 characters.":
        "这不是地址：地址以 agora1 开头，共 44 个字符。",
    "That is not a hash: a hash has 64 hexadecimal characters.":
        "这不是哈希：哈希由 64 个十六进制字符组成。",
    "The node has no chain yet.": "节点上还没有链。",
    "There is no block {height} yet.": "还没有第 {height} 个区块。",
    "No transaction with this hash is on the chain (it may still be waiting in a node's "
    "pool).": "链上没有此哈希的交易（它可能仍在某个节点的交易池中等待）。",
    "No such account.": "没有此账户。", "No such merchant.": "没有此商家。",
    "There is no listing #{id}.": "没有 #{id} 号商品。",
    "There is no order #{id}.": "没有 #{id} 号订单。",
    "There is no group deal #{id}.": "没有 #{id} 号团购。",
    "No such arbiter.": "没有此仲裁人。",
    "The explorer is busy; try again in a moment.": "浏览器正忙，请稍后再试。",
    "The node has no validator set.": "节点没有验证者集合。",
    # ---- search
    "“{q}” may mean:": "“{q}”可能是：",
    "Nothing on this chain matches “{q}”.": "链上没有与“{q}”匹配的内容。",
    "You can search for a block height, a block or transaction hash, an address (agora1…), "
    "an account's name, an order id or a listing id. Write “order 12” or “listing 12” when "
    "a number could mean several things.":
        "可以搜索区块高度、区块或交易哈希、地址（agora1…）、账户名称、订单号或商品号。"
        "一个数字可能指多种内容时，请写“订单 12”或“商品 12”。",
    "Account {id}": "账户 {id}", "Block {id}": "区块 {id}", "Order #{id}": "订单 #{id}",
    "Listing #{id}": "商品 #{id}", "Group deal #{id}": "团购 #{id}",
    "Transaction {id}": "交易 {id}",
    # ---- home
    "The chain now": "链的当前状态",
    "Height": "高度", "Last block": "上一个区块",
    "Committed transactions per second": "每秒确认的交易数",
    "over the last {n} blocks": "（最近 {n} 个区块）",
    "Waiting in the pool": "交易池中等待",
    "{n} transactions": "{n} 笔交易",
    "Chain": "链",
    "Who proposed the last blocks": "最近的区块由谁提议",
    "{n} of the last {total} blocks": "最近 {total} 个区块中的 {n} 个",
    "Latest blocks": "最新区块", "Time": "时间", "Transactions": "交易",
    "Proposer": "提议者", "Latest transactions": "最新交易",
    # ---- tables of transactions
    "What happened": "发生了什么", "From": "发起人", "Block": "区块", "Result": "结果",
    "Transaction": "交易", "done": "成功", "refused": "被拒绝",
    "No transactions.": "没有交易。",
    # ---- block
    "Block {height}": "区块 {height}",
    "← Block {height}": "← 区块 {height}", "Block {height} →": "区块 {height} →",
    "Block hash": "区块哈希", "Parent hash": "父区块哈希", "State root": "状态根",
    "Transactions root": "交易根", "Receipts root": "收据根", "Validator set": "验证者集合",
    "Signed by": "签名者",
    "{n} validators signed this block's commit certificate (round {view}).":
        "{n} 个验证者签署了此区块的提交证书（第 {view} 轮）。",
    "The node did not give this block's certificate.": "节点没有提供此区块的证书。",
    "Previous page": "上一页", "Next page": "下一页",
    # ---- transaction
    "The chain refused this action: {reason}": "链拒绝了此操作：{reason}",
    "Status": "状态", "Position in the block": "在区块中的位置", "Sent with it": "随附金额",
    "Gas used": "消耗的燃料", "{used} of {limit}": "{used} / {limit}", "Fee": "手续费",
    "Nonce": "序号", "Memo": "备注", "Hash": "哈希", "The call": "调用",
    "Method {method} of the {contract} contract, with:": "调用 {contract} 合约的 {method} 方法，参数：",
    "What it caused": "产生的结果", "No events.": "没有事件。",
    "It returned {value}.": "返回值为 {value}。",
    # ---- account
    "Account": "账户",
    "This account sells: see its merchant page": "此账户是商家：查看商家页面",
    "This account is an arbiter: see its record": "此账户是仲裁人：查看其记录",
    "Coin balance": "币余额", "Reward tokens": "奖励代币", "Transactions sent": "已发送交易",
    "Kind": "类型", "contract": "合约", "person or shop": "个人或商店", "History": "历史记录",
    "The node this explorer reads does not serve account history.":
        "本浏览器所读取的节点不提供账户历史。",
    "Older transactions": "更早的交易",
    # ---- merchant
    "Merchant": "商家", "Reputation": "信誉", "Rating": "评分",
    "{avg} of 5 from {n} reviews": "{avg} 分（满分 5 分，共 {n} 条评价）",
    "No reviews yet": "还没有评价", "Distinct reviewers": "不同的评价人",
    "Completed orders": "完成的订单", "Refunded orders": "退款的订单",
    "Disputed orders": "有争议的订单",
    "{n} ({lost} lost by the merchant)": "{n}（其中商家败诉 {lost} 次）",
    "Declined orders": "拒绝的订单", "Orders not shipped in time": "未按时发货的订单",
    "Sales volume": "销售额",
    "Order outcomes over the last {n} days": "最近 {n} 天的订单结果",
    "{n} orders changed in this time; the table below gives the numbers.":
        "这段时间有 {n} 个订单发生变化；下表列出了具体数字。",
    "still open": "尚未结束", "The numbers, day by day": "每日数字", "Day": "日期",
    "Listings": "商品", "paused": "已暂停", "{n} in stock": "库存 {n}",
    "No listings.": "没有商品。", "Latest orders": "最新订单", "Order": "订单",
    "Buyer": "买家", "State": "状态", "Paid": "已付", "Last change": "最后变化",
    "No orders.": "没有订单。", "Reviews": "评价", "No reviews yet.": "还没有评价。",
    "The node this explorer reads does not serve this list.":
        "本浏览器所读取的节点不提供此列表。",
    "Review of order #{id}": "订单 #{id} 的评价", "{n} of 5 stars": "{n} 星（满分 5 星）",
    "by": "评价人", "The merchant replied:": "商家回复：",
    # ---- listing
    "Listing": "商品",
    "Listing #{id}, version {v}, sold by": "商品 #{id}，第 {v} 版，卖家",
    "listed": "上架于", "Terms": "条款", "Arbiters a buyer may choose": "买家可选的仲裁人",
    "fee {fee}, rules within {d}": "收费 {fee}，{d}内裁决",
    "{cases} cases, {ruled} ruled, {missed} missed": "受理 {cases} 件，已裁决 {ruled} 件，超时 {missed} 件",
    "No arbiter is named.": "未指定仲裁人。", "Its record": "成交记录",
    "{completed} completed, {refunded} refunded, {disputes} disputed, {declined} declined, "
    "{not_shipped} not shipped in time; {n} reviews.":
        "完成 {completed} 单，退款 {refunded} 单，争议 {disputes} 单，拒绝 {declined} 单，"
        "未按时发货 {not_shipped} 单；评价 {n} 条。",
    "Group deals": "团购", "{members} of {size} joined": "已参加 {members} 人 / 共需 {size} 人",
    "No group deal has started yet.": "还没有开始的团购。",
    "Price: {price} each.": "单价：{price}。",
    "Or {price} in reward tokens.": "或用奖励代币支付 {price}。",
    "{n} in stock.": "库存 {n} 件。",
    "Paused: the merchant takes no orders now.": "已暂停：商家目前不接受订单。",
    "The merchant ships within {d} of payment, or the buyer may cancel.":
        "商家在付款后 {d}内发货，否则买家可以取消。",
    "The buyer has {d} after shipping to confirm delivery.": "发货后买家有 {d}确认收货。",
    "Returns: within {d} of delivery, no reason needed.": "退货：收货后 {d}内可无理由退货。",
    "No returns: this listing has no return window.": "不支持退货：此商品没有退货期。",
    "The merchant answers a return within {d}.": "商家在 {d}内答复退货申请。",
    "If an arbiter does not rule in time, {share} of the held amount goes back to the buyer.":
        "如果仲裁人未按时裁决，托管金额的 {share} 退还给买家。",
    "Orders without an arbiter are accepted.": "接受不指定仲裁人的订单。",
    "The merchant pays, in reward tokens: {list}.": "商家以奖励代币支付：{list}。",
    "{rate} {what}": "{rate} {what}", "referral": "推荐佣金", "cashback": "返现",
    "review bounty": "评价奖励",
    "Group deal: {price} each when {size} buyers join within {d}.":
        "团购：{d}内凑满 {size} 位买家，每件 {price}。",
    # ---- group
    "each": "每件", "started by": "发起人",
    "The group must fill by {when}; after that anyone may close it and every member is "
    "refunded.": "团购须在 {when} 前凑满；此后任何人都可以关闭它，所有成员全额退款。",
    "It filled at": "凑满于", "Members": "成员",
    # ---- order
    "State:": "状态：", "Item": "商品", "Quantity": "数量",
    "Still held in escrow": "仍在托管中", "Tracking": "物流单号", "See the listing": "查看商品",
    "Timeline": "时间线", "the escrow": "托管合约",
    "Reviewed it: {stars} “{text}”": "发表了评价：{stars}“{text}”",
    "The merchant replied: “{text}”": "商家回复：“{text}”",
    "Arbiter": "仲裁人",
    "The merchant must ship by {when}; after that the buyer may cancel and is refunded in "
    "full.": "商家必须在 {when} 前发货；此后买家可以取消订单并获得全额退款。",
    "The buyer must confirm delivery or open a dispute by {when}; after that the order "
    "counts as delivered.": "买家须在 {when} 前确认收货或发起争议；此后订单视为已送达。",
    "The buyer may return it without giving a reason until {when}; after that the merchant "
    "is paid.": "买家在 {when} 前可以无理由退货；此后货款支付给商家。",
    "The merchant must accept or contest the return by {when}; after that the buyer may "
    "send it back.": "商家须在 {when} 前接受退货或提出异议；此后买家可以寄回商品。",
    "The merchant accepted the return: the buyer must send it back by {when}; after that "
    "the return lapses and the merchant is paid.":
        "商家已接受退货：买家须在 {when} 前寄回；此后退货失效，货款支付给商家。",
    "The merchant must confirm receiving it back, or contest, by {when}; after that the "
    "buyer is refunded in full.": "商家须在 {when} 前确认收到退货或提出异议；此后买家获得全额退款。",
    "The arbiter must rule by {when}; after that the listing's default split applies "
    "({share} back to the buyer).": "仲裁人须在 {when} 前裁决；此后按商品的默认比例分配（{share} 退还买家）。",
    "This order has ended.": "此订单已结束。",
    "This order has ended: the merchant was paid.": "此订单已结束：货款已支付给商家。",
    "This order has ended: the merchant declined it and the buyer was refunded.":
        "此订单已结束：商家拒绝了订单，买家已获退款。",
    "This order has ended: it was cancelled and the buyer was refunded.":
        "此订单已结束：订单已取消，买家已获退款。",
    "This order has ended: the buyer was refunded.": "此订单已结束：买家已获退款。",
    "This order has ended: the arbiter's ruling (or a settlement) split the held amount.":
        "此订单已结束：托管金额已按仲裁裁决（或和解）分配。",
    # ---- order states
    "waiting for the group to fill": "等待成团", "paid, waiting to ship": "已付款，待发货",
    "shipped": "已发货", "delivered": "已送达", "completed": "已完成", "declined": "已拒绝",
    "cancelled": "已取消", "return requested": "已申请退货", "refunded": "已退款",
    "disputed": "争议中", "resolved by the arbiter": "已仲裁", "sent back": "已寄回",
    "open": "进行中", "filled": "已成团", "failed": "未成团",
    # ---- timeline entries
    "Placed the order and paid {paid} into escrow.": "下单并向托管支付了 {paid}。",
    "Joined group deal #{group} and paid {paid} into escrow.":
        "参加了团购 #{group}，并向托管支付了 {paid}。",
    "Shipped it.": "已发货。", "Confirmed delivery.": "确认收货。",
    "The order completed: the merchant was paid.": "订单完成：货款已支付给商家。",
    "Declined the order; the buyer was refunded.": "拒绝了订单；买家已获退款。",
    "Cancelled the order; the buyer was refunded.": "取消了订单；买家已获退款。",
    "Asked to return it.": "申请退货。", "Accepted the return.": "接受了退货。",
    "The buyer was refunded.": "买家已获退款。",
    "Opened a dispute before the arbiter.": "向仲裁人发起了争议。",
    "The dispute was resolved.": "争议已裁决。", "Sent it back.": "寄回了商品。",
    "The group filled: the order is paid.": "已成团：订单已付款。",
    "Joined the group.": "参加了团购。", "Changed the order.": "订单发生了变化。",
    "Tracking: {note}": "物流单号：{note}",
    "Paid {amount} to {receiver} ({reason}).": "向 {receiver} 支付了 {amount}（{reason}）。",
    "Offered to settle with {amount} back to the buyer.": "提出和解：退还买家 {amount}。",
    "Group deal #{group}: {members} of {size} joined ({state}).":
        "团购 #{group}：已参加 {members} 人 / 共需 {size} 人（{state}）。",
    "Moved {amount} from {sender} to {receiver}.": "从 {sender} 转给 {receiver} {amount}。",
    "{owner} allowed {spender} to spend {amount}.": "{owner} 允许 {spender} 花费 {amount}。",
    "A listing was created.": "创建了商品。", "A listing changed.": "商品发生了变化。",
    "payment": "货款", "refund": "退款", "referral commission": "推荐佣金",
    "arbiter's fee": "仲裁费", "dispute deposit returned": "退还争议押金",
    # ---- actions
    "Sent {amount} to {to}.": "向 {to} 发送了 {amount}。",
    "Deployed a contract ({n} bytes of code).": "部署了一个合约（代码 {n} 字节）。",
    "An action of an unknown kind.": "一种未知类型的操作。",
    "listing #{id}": "商品 #{id}",
    "Placed order #{order} for {qty} × “{title}” at {each}.":
        "下单 #{order}：{qty} × “{title}”，单价 {each}。",
    "Started group deal #{group} with order #{order} for {qty} × “{title}” at {each}.":
        "发起团购 #{group}（订单 #{order}）：{qty} × “{title}”，单价 {each}。",
    "Joined group deal #{group} with order #{order} for {qty} × “{title}” at {each}.":
        "参加团购 #{group}（订单 #{order}）：{qty} × “{title}”，单价 {each}。",
    "Placed order #{order} for {qty} × “{title}”, paying {amount}.":
        "下单 #{order}：{qty} × “{title}”，支付 {amount}。",
    "Shipped order #{order} (tracking {tracking}).": "订单 #{order} 已发货（物流单号 {tracking}）。",
    "Declined order #{order}.": "拒绝了订单 #{order}。",
    "Cancelled order #{order}.": "取消了订单 #{order}。",
    "Asked to return order #{order}.": "申请退货：订单 #{order}。",
    "Accepted the return of order #{order}.": "接受了订单 #{order} 的退货。",
    "Sent order #{order} back (tracking {tracking}).": "寄回了订单 #{order}（物流单号 {tracking}）。",
    "Confirmed receiving order #{order} back.": "确认收到订单 #{order} 的退货。",
    "Contested the return of order #{order} before the arbiter.":
        "就订单 #{order} 的退货向仲裁人提出异议。",
    "Opened a dispute on order #{order}.": "就订单 #{order} 发起了争议。",
    "Applied the passed deadline of order #{order}.": "执行了订单 #{order} 已过的期限。",
    "Returned the unearned review bounty of order #{order}.":
        "退回了订单 #{order} 未领取的评价奖励。",
    "Left the group deal with order #{order}.": "以订单 #{order} 退出了团购。",
    "Confirmed delivery of order #{order} and waived the return window.":
        "确认收到订单 #{order}，并放弃退货期。",
    "Confirmed delivery of order #{order}.": "确认收到订单 #{order}。",
    "Ruled on order #{order}: {amount} back to the buyer.": "裁决订单 #{order}：退还买家 {amount}。",
    "Offered to settle order #{order} with {amount} back to the buyer.":
        "提出和解订单 #{order}：退还买家 {amount}。",
    "Refunded {amount} of order #{order}.": "退还了订单 #{order} 的 {amount}。",
    "Closed group deal #{group}.": "关闭了团购 #{group}。",
    "Listed “{title}” (listing #{id}) at {price}.": "上架了“{title}”（商品 #{id}），价格 {price}。",
    "Registered as the arbiter “{name}” with a fee of {fee}.":
        "注册为仲裁人“{name}”，收费 {fee}。",
    "Took arbiter cases again.": "重新开始受理仲裁。",
    "Stopped taking arbiter cases.": "停止受理仲裁。",
    "Changed the price of “{title}” to {price}.": "把“{title}”的价格改为 {price}。",
    "Set the stock of “{title}” to {stock}.": "把“{title}”的库存设为 {stock}。",
    "Changed the terms of “{title}”.": "修改了“{title}”的条款。",
    "Changed the commissions of “{title}”.": "修改了“{title}”的佣金。",
    "Set a group deal on “{title}”.": "为“{title}”设置了团购。",
    "Paused “{title}”.": "暂停了“{title}”。", "Resumed “{title}”.": "恢复了“{title}”。",
    "Reviewed order #{order}: {stars} “{text}”": "评价订单 #{order}：{stars}“{text}”",
    "Replied to the review of order #{order}: “{text}”": "回复了订单 #{order} 的评价：“{text}”",
    "Allowed {spender} to spend {amount}.": "允许 {spender} 花费 {amount}。",
    "Redeemed {amount}.": "兑换了 {amount}。",
    "Funded {amount} of reward tokens for {to}.": "为 {to} 充值了 {amount} 奖励代币。",
    "Voted yes on proposal #{id}.": "对提案 #{id} 投了赞成票。",
    "Voted no on proposal #{id}.": "对提案 #{id} 投了反对票。",
    "Proposed adding the validator “{name}” with power {power}.":
        "提议加入验证者“{name}”，权重 {power}。",
    "Proposed removing the validator {validator}.": "提议移除验证者 {validator}。",
    "Proposed giving {validator} power {power}.": "提议把 {validator} 的权重设为 {power}。",
    "Reported a validator's double signing: {validator}.": "举报验证者双重签名：{validator}。",
    "Proposed setting {name} to {value}.": "提议把 {name} 设为 {value}。",
    "Called {method} on the {contract} contract.": "调用了 {contract} 合约的 {method}。",
    # ---- times
    "{n} day": "{n} 天", "{n} days": "{n} 天", "{n} hour": "{n} 小时", "{n} hours": "{n} 小时",
    "{n} minute": "{n} 分钟", "{n} minutes": "{n} 分钟", "{n} second": "{n} 秒",
    "{n} seconds": "{n} 秒", "in {span}": "{span}后", "{span} ago": "{span}前",
    # ---- arbiter
    "Rules within": "裁决时限", "Takes cases": "受理案件", "yes": "是", "no": "否",
    "Registered": "注册时间",
    "This account has not registered as an arbiter.": "此账户没有注册为仲裁人。",
    "Record": "记录", "Cases": "案件", "Ruled": "已裁决", "For the buyer": "判买家胜",
    "For the merchant": "判商家胜", "Split": "分摊", "Missed the deadline": "超时未裁决",
    "Fees earned": "所得仲裁费",
    # ---- validators
    "Validators and proposals": "验证者与提案",
    "{n} validators with {power} voting power in all decide the blocks from height "
    "{since}; a block needs the signatures of more than two thirds of the power.":
        "自高度 {since} 起，由 {n} 个验证者（总投票权重 {power}）决定区块；"
        "一个区块需要超过三分之二权重的签名。",
    "Validator": "验证者", "Power": "权重",
    "Proposed of the last {n} blocks": "最近 {n} 个区块中提议的数量",
    "Last proposed": "最近一次提议", "Governance proposals": "治理提案", "Proposal": "提案",
    "Votes": "投票", "yes {yes}, no {no} of {total}": "赞成 {yes}，反对 {no}，总计 {total}",
    "No proposals.": "没有提案。", "Evidence of double signing": "双重签名证据",
    "{name} signed two different {kind} messages at height {h}; recorded in block":
        "{name} 在高度 {h} 签署了两条不同的 {kind} 消息；记录于区块",
    "None recorded.": "没有记录。",
    "Add the validator “{name}” with power {power}.": "加入验证者“{name}”，权重 {power}。",
    "Remove the validator “{name}”.": "移除验证者“{name}”。",
    "Give the validator “{name}” power {power}.": "把验证者“{name}”的权重设为 {power}。",
    "Set {param} to {value} from height {h}.": "从高度 {h} 起把 {param} 设为 {value}。",
    "open for votes": "投票中", "passed": "已通过", "rejected": "已否决", "expired": "已过期",
    "Updated": "已更新",
}
