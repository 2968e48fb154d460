// Agora explorer: local times and live updates. The page's facts are in its HTML
// already; without this script it only lacks these two.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var status = document.getElementById("live-status");
  var lang = (main && main.getAttribute("data-lang")) || "en";

  function localTimes(root) {
    var fmt;
    try {
      fmt = new Intl.DateTimeFormat(lang, { year: "numeric", month: "short", day: "numeric",
        hour: "2-digit", minute: "2-digit", second: "2-digit" });
    } catch (e) { return; }
    var els = root.querySelectorAll("time[data-ms]");
    for (var i = 0; i < els.length; i++) {
      var ms = Number(els[i].getAttribute("data-ms"));
      if (isFinite(ms) && ms > 0) { els[i].textContent = fmt.format(new Date(ms)); }
    }
  }

  var units = lang === "zh-CN"
    ? { s: " 秒前", m: " 分钟前", h: " 小时前", d: " 天前" }
    : { s: " seconds ago", m: " minutes ago", h: " hours ago", d: " days ago" };
  function since(root) {
    var els = root.querySelectorAll("[data-since]");
    var now = Date.now();
    for (var i = 0; i < els.length; i++) {
      var s = Math.max(0, Math.floor((now - Number(els[i].getAttribute("data-since"))) / 1000));
      els[i].textContent = s < 60 ? s + units.s : s < 3600 ? Math.floor(s / 60) + units.m
        : s < 86400 ? Math.floor(s / 3600) + units.h : Math.floor(s / 86400) + units.d;
    }
  }

  localTimes(document);
  since(document);
  setInterval(function () { since(document); }, 1000);

  var live = main ? main.getAttribute("data-live") : "";
  if (!live || !window.WebSocket || !window.fetch) { return; }
  var subs = [];
  var colon = live.indexOf(":");
  var kind = colon < 0 ? live : live.slice(0, colon);
  var subject = colon < 0 ? "" : live.slice(colon + 1);
  var minGap = 1000;
  if (kind === "blocks") { subs.push({ kind: "blocks" }); }
  else if (kind === "blocks-slow") { subs.push({ kind: "blocks" }); minGap = 5000; }
  else if (kind === "order") { subs.push({ kind: "events", order_id: Number(subject) }); }
  else if (kind === "account") { subs.push({ kind: "txs", account: subject }); }
  else if (kind === "events-account") { subs.push({ kind: "events", account: subject }); }
  if (!subs.length) { return; }

  var pending = false, last = 0, timer = null, loading = false;
  function refresh() {
    timer = null;
    if (loading) { pending = true; return; }
    loading = true;
    pending = false;
    last = Date.now();
    var url = new URL(window.location.href);
    url.searchParams.set("part", "main");
    url.searchParams.set("lang", lang);
    fetch(url.toString(), { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        loading = false;
        if (html === null) { return; }
        var focused = document.activeElement && main.contains(document.activeElement);
        main.innerHTML = html;
        localTimes(main);
        since(main);
        if (focused) { main.focus(); }
        status.textContent = lang === "zh-CN" ? "已更新" : "Updated";
        status.classList.add("shown");
        setTimeout(function () { status.classList.remove("shown"); }, 1500);
        if (pending) { schedule(); }
      })
      .catch(function () { loading = false; });
  }
  function schedule() {
    if (timer) { return; }
    var wait = Math.max(0, minGap - (Date.now() - last));
    timer = setTimeout(refresh, wait);
  }

  var backoff = 1000;
  function connect() {
    var proto = window.location.protocol === "https:" ? "wss:" : "ws:";
    var ws = new WebSocket(proto + "//" + window.location.host + "/websocket");
    ws.onopen = function () {
      backoff = 1000;
      for (var i = 0; i < subs.length; i++) {
        ws.send(JSON.stringify({ jsonrpc: "2.0", id: i + 1, method: "subscribe", params: subs[i] }));
      }
    };
    ws.onmessage = function (msg) {
      var data;
      try { data = JSON.parse(msg.data); } catch (e) { return; }
      if (data && data.id === undefined && data.method) { schedule(); }
    };
    ws.onclose = function () {
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    };
    ws.onerror = function () { /* onclose follows and reconnects */ };
  }
  connect();
})();
