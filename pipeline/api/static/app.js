// salespulse console: plain JavaScript, no external assets (works offline on store tablets).
// All text from the API is inserted with textContent, never as HTML.
"use strict";

const BAND_ZH = { healthy: "健康", watch: "关注", at_risk: "高风险" };
const STATUS_ZH = { open: "待处理", acknowledged: "已确认", resolved: "已解决", suppressed: "已抑制（超出每周联系上限）" };
const TYPE_ZH = {
  size: "尺码", colour: "颜色", category: "品类", fit: "版型", quality: "质量", return_reason: "退货原因",
  occasion: "场合", family: "家庭", recommended: "已推荐", pairing: "搭配", preference: "偏好", dislike: "不喜欢",
  allergy: "过敏",
};
const SOURCE_ZH = { app: "应用", pos: "收银", messaging: "消息", notes: "店员笔记", other: "其他" };
// Only these roles may acknowledge or resolve an alert (the API refuses the rest with 403).
function mayAct() { return me && ["admin", "store_manager", "cs"].includes(me.role); }
// A key typed in lives for the browser session; a key paired to a tablet stays on the device
// (revocable by an admin on the 设备 page).
let key = localStorage.getItem("salespulse-device-key") || sessionStorage.getItem("salespulse-key") || "";
let me = null;

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") el.addEventListener("click", v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return el;
}

// Each navigation counts; a page read that answers after the user went elsewhere is stale and
// drawn nowhere (a slow page once replaced the form the user had opened since).
let navSeq = 0;
class Stale extends Error {}

async function api(path, options) {
  const seq = navSeq;
  const res = await fetch(path, { ...(options || {}), headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" } });
  if (res.status === 401) { logout(); throw new Error("请重新登录"); }
  if (res.status === 404) throw new Error("未找到，或不在您的权限范围内");
  if (res.status === 429) throw new Error("请求过于频繁，请稍后再试");
  if (!res.ok) throw new Error("服务器错误（" + res.status + "）");
  const body = await res.json();
  if (seq !== navSeq && !(options && options.method)) throw new Stale("stale");  // reads only: an action's answer still counts
  return body;
}

function view() { return document.getElementById("view"); }
function show(...nodes) {
  const v = view(); v.replaceChildren(...nodes.flat().filter(Boolean)); v.hidden = false;
  // A wide table scrolls inside its card, never the page sideways.
  for (const t of v.querySelectorAll("table")) {
    if (!t.parentElement.classList.contains("table-wrap")) { const w = h("div", { class: "table-wrap" }); t.replaceWith(w); w.appendChild(t); }
  }
}
function fail(err) { if (!(err instanceof Stale)) show(h("p", { class: "error", role: "alert" }, err.message)); }
function time(iso) { return iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : "—"; }
// Numbers as people read them: a score in whole points, a change with one decimal and a sign.
function pts(v) { return v === null || v === undefined ? "—" : String(Math.round(v)); }
function delta(v) { return v === null || v === undefined ? "—" : (v > 0 ? "+" : v < 0 ? "−" : "±") + Math.abs(v).toFixed(1); }
function day(iso) { const d = new Date(iso); return (d.getMonth() + 1) + "月" + d.getDate() + "日"; }
// A customer as staff call them: the masked name from the till (王女士), else the member number.
function who(c) { return c.display_name || (c.member_no ? "会员 " + c.member_no : c.customer_id); }
function pager(total, offset, size, goTo) {
  const pages = Math.max(1, Math.ceil(total / size));
  return h("p", { class: "pager" }, "共 " + total + " 条 · 第 " + (Math.floor(offset / size) + 1) + " / " + pages + " 页 ",
    offset > 0 ? h("button", { class: "prev", onclick: () => goTo(Math.max(0, offset - size)) }, "上一页") : null, " ",
    offset + size < total ? h("button", { class: "next", onclick: () => goTo(offset + size) }, "下一页") : null);
}

function logout() {
  key = ""; me = null; sessionStorage.removeItem("salespulse-key"); localStorage.removeItem("salespulse-device-key");
  document.getElementById("nav").hidden = true; view().hidden = true;
  document.getElementById("login").hidden = false; document.getElementById("who").textContent = "";
}

async function login(k) {
  key = k;
  try {
    me = await api("/api/me");
  } catch (e) {
    document.getElementById("login-error").textContent = "密钥无效或已吊销";
    key = ""; return;
  }
  if (localStorage.getItem("salespulse-device-key") !== key) sessionStorage.setItem("salespulse-key", key);
  document.getElementById("login").hidden = true;
  document.getElementById("nav").hidden = false;
  const who = document.getElementById("who");
  who.replaceChildren(me.name + "（" + me.role_zh + "） ", h("a", { onclick: logout, id: "logout" }, "退出"));
  const allowed = {
    dashboard: ["admin", "store_manager"], customers: ["admin", "store_manager", "sales_rep", "cs"],
    search: ["admin", "store_manager", "sales_rep", "cs"],
    alerts: ["admin", "store_manager", "sales_rep", "cs"], ops: ["admin", "ops"],
    deals: ["admin", "sales_manager", "sales_rep"], funnel: ["admin", "sales_manager"],
    money: ["admin", "finance", "sales_manager", "sales_rep"], devices: ["admin"],
  };
  for (const [name, roles] of Object.entries(allowed)) document.getElementById("nav-" + name).hidden = !roles.includes(me.role);
  const home = { ops: "ops", store_manager: "dashboard", sales_rep: "deals", sales_manager: "funnel", finance: "money" };
  go(home[me.role] || "alerts");
}

function go(name, arg) {
  const seq = ++navSeq;
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.view === name);
  ({ dashboard, customers, search, alerts, ops, customer, deals, funnel, deal, money, devices })[name](arg).catch((e) => { if (seq === navSeq) fail(e); });
}

async function dashboard(storeId) {
  const stores = me.stores.length ? me.stores : [];
  const store = storeId || stores[0];
  if (!store) {
    const input = h("input", { id: "store-id", placeholder: "门店编号，如 S-SH-001" });
    show(h("section", { class: "card" }, h("h2", {}, "门店看板"), input, " ", h("button", { onclick: () => go("dashboard", input.value.trim()) }, "打开")));
    return;
  }
  const d = await api("/api/stores/" + encodeURIComponent(store) + "/dashboard");
  const pick = stores.length > 1 ? h("div", { class: "chips" }, stores.map((s) => h("button", { class: s === store ? "on" : "", onclick: () => go("dashboard", s) }, s))) : null;
  const open = d.alerts.filter((a) => a.status === "open");
  const working = d.alerts.filter((a) => a.status !== "open");
  show(
    h("h2", {}, "门店看板 · " + d.store_id + " · " + d.day), pick,
    h("div", { class: "grid" },
      h("section", { class: "card", id: "visitors" }, h("h3", {}, "今日到店会员（" + d.visitors_total + " 位）"),
        d.visitors.length ? h("ul", { class: "plain" }, d.visitors.map((v) => h("li", {},
          h("a", { onclick: () => go("customer", v.customer_id), "data-customer": v.customer_id }, who(v)), " ",
          v.band ? h("span", { class: "band " + v.band }, BAND_ZH[v.band]) : null, " ",
          h("span", { class: "muted" }, [v.member_no ? "会员号 " + v.member_no : "", v.phone_masked, time(v.last_visit)].filter(Boolean).join(" · ")),
          v.message ? h("div", { class: "reco" }, v.message) : h("div", { class: "muted" }, "暂无推荐")))) : h("p", { class: "muted" }, "今天还没有识别到会员"),
        d.visitors_total > d.visitors.length ? h("p", { class: "muted" }, "显示最近到店的 " + d.visitors.length + " 位") : null),
      h("section", { class: "card", id: "at-risk" }, h("h3", {}, "高风险客户（" + d.at_risk_total + " 位）"),
        d.at_risk.length ? h("ul", { class: "plain" }, d.at_risk.map((c) => h("li", {},
          h("a", { onclick: () => go("customer", c.customer_id), "data-customer": c.customer_id }, who(c)), " ", pts(c.score) + "分 ",
          h("span", { class: "muted" }, "7天 " + delta(c.trend_7d)),
          h("div", { class: "muted" }, (c.reasons || []).slice(0, 2).join("；"))))) : h("p", { class: "muted" }, "本店目前没有高风险客户")),
      h("section", { class: "card", id: "store-alerts" }, h("h3", {}, "待处理预警（" + d.open_alerts + "）"), alertList(open),
        working.length ? [h("h3", { class: "sub" }, "处理中（已确认，" + working.length + "）"), alertList(working)] : null)));
}

const RULE_ZH = { silent_key_contact: "重点联系人沉默且回复慢", silent_slow_customer: "客户沉默且回复慢", fell_to_at_risk: "降至高风险", score_fall_7d: "7天内分数大跌" };
function alertList(items) {
  if (!items.length) return h("p", { class: "muted" }, "暂无预警");
  return h("ul", { class: "plain alerts" }, items.map((a) => h("li", { "data-alert": a.alert_id },
    h("strong", {}, a.title), " ", h("span", { class: "status st-" + a.status }, STATUS_ZH[a.status] || a.status),
    a.band_now && a.band_now !== "at_risk" && a.rule_id && a.rule_id.includes("at_risk") ? h("span", { class: "muted" }, " 现已回升为" + BAND_ZH[a.band_now]) : null,
    h("br", {}),
    a.customer_id ? h("a", { onclick: () => go("customer", a.customer_id) }, who(a)) : null,
    h("span", { class: "muted" }, " 负责人 " + (a.assignee_name || a.assignee) + " · " + time(a.raised_at)), " ",
    mayAct() && a.status === "open" ? h("button", { class: "ack", onclick: (e) => act(a, "acknowledge", e.target) }, "确认") : null, " ",
    mayAct() && ["open", "acknowledged", "suppressed"].includes(a.status) ? h("button", { class: "resolve", onclick: (e) => act(a, "resolve", e.target) }, "解决") : null)));
}

async function act(a, verb, button) {
  button.disabled = true;
  try {
    await api("/api/alerts/" + encodeURIComponent(a.alert_id) + "/" + verb, { method: "POST", body: JSON.stringify({ note: "" }) });
    button.replaceWith(h("span", { class: "done" }, verb === "acknowledge" ? "已提交确认" : "已提交解决"));
  } catch (e) {
    button.disabled = false; button.after(h("span", { class: "error" }, " " + e.message));
  }
}

// The customers in scope, lowest score first: a rep's own contacts, a manager's store.
async function customers(arg) {
  const st = { band: "", offset: 0, ...(arg || {}) };
  const size = 20;
  const r = await api("/api/customers?limit=" + size + "&offset=" + st.offset + (st.band ? "&band=" + st.band : ""));
  const all = Object.values(r.counts).reduce((x, y) => x + y, 0);
  const chip = (b, label, n) => h("button", { class: st.band === b ? "on" : "", "data-band": b, onclick: () => go("customers", { band: b, offset: 0 }) }, label + "（" + n + "）");
  show(h("section", { class: "card", id: "customer-list" }, h("h2", {}, me.role === "sales_rep" ? "我的客户" : "客户"),
    h("div", { class: "chips" }, chip("", "全部", all), ["at_risk", "watch", "healthy"].map((b) => chip(b, BAND_ZH[b], r.counts[b] || 0))),
    pager(r.total, st.offset, size, (o) => go("customers", { ...st, offset: o })),
    r.items.length ? h("ul", { class: "plain" }, r.items.map((c) => h("li", {},
      h("a", { onclick: () => go("customer", c.customer_id), "data-customer": c.customer_id }, who(c)), " ",
      h("span", { class: "band " + c.band }, BAND_ZH[c.band]), " " + pts(c.score) + "分 ",
      h("span", { class: "muted" }, "7天 " + delta(c.trend_7d)),
      h("div", { class: "muted" }, (c.reasons || []).slice(0, 2).join("；"))))) : h("p", { class: "muted" }, "暂无客户")));
}

async function search() {
  const input = h("input", { id: "q", placeholder: "会员号 / 手机号 / 138****5678" });
  const out = h("div", {});
  const run = async () => {
    try {
      const rows = await api("/api/search?q=" + encodeURIComponent(input.value.trim()));
      out.replaceChildren(rows.length ? h("ul", { class: "plain" }, rows.map((r) => h("li", {},
        h("a", { onclick: () => go("customer", r.customer_id) }, who(r)), " ",
        h("span", { class: "muted" }, [r.member_no ? "会员号 " + r.member_no : "", r.phone_masked, r.band ? BAND_ZH[r.band] + " " + pts(r.score) + "分" : ""].filter(Boolean).join(" · "))))) : h("p", { class: "muted" }, "没有找到"));
    } catch (e) { out.replaceChildren(h("p", { class: "error" }, e.message)); }
  };
  show(h("section", { class: "card" }, h("h2", {}, "客户查询"), input, " ", h("button", { class: "primary", onclick: run, id: "search-button" }, "查询"), out));
}

async function alerts(arg) {
  const st = { status: "", rule: "", assignee: "", store: "", sort: "newest", offset: 0, ...(arg || {}) };
  const size = 20;
  const q = new URLSearchParams({ limit: String(size), offset: String(st.offset), sort: st.sort });
  for (const k of ["status", "rule", "assignee", "store"]) if (st[k]) q.set(k, st[k]);
  const r = await api("/api/alerts?" + q.toString());
  const again = (patch) => go("alerts", { ...st, offset: 0, ...patch });
  const all = Object.values(r.counts).reduce((x, y) => x + y, 0);
  const chip = (s, label, n) => h("button", { class: st.status === s ? "on" : "", "data-status": s, onclick: () => again({ status: s }) }, label + "（" + n + "）");
  const select = (id, label, value, options, key) => {
    const el = h("select", { id: id, "aria-label": label }, h("option", { value: "" }, label + "：全部"), options.map(([v, t]) => h("option", { value: v }, t)));
    el.value = value; el.addEventListener("change", () => again({ [key]: el.value })); return el;
  };
  const sort = h("select", { id: "alert-sort", "aria-label": "排序" },
    [["newest", "最新在前"], ["oldest", "最早在前"], ["severity", "严重程度"], ["score", "分数从低到高"]].map(([v, t]) => h("option", { value: v }, t)));
  sort.value = st.sort; sort.addEventListener("change", () => again({ sort: sort.value }));
  const storeBox = me.role === "admin" ? h("input", { id: "alert-store", placeholder: "门店编号", value: st.store }) : null;
  if (storeBox) storeBox.addEventListener("change", () => again({ store: storeBox.value.trim() }));
  show(h("section", { class: "card", id: "alerts-page" }, h("h2", {}, "预警"),
    h("div", { class: "chips", id: "alert-status" }, chip("", "全部", all), ["open", "acknowledged", "suppressed", "resolved"].map((s) => chip(s, STATUS_ZH[s].replace(/（.*）/, ""), r.counts[s] || 0))),
    h("div", { class: "filters" },
      select("alert-rule", "规则", st.rule, r.rules.map((x) => [x, RULE_ZH[x] || x]), "rule"),
      me.role === "cs" ? null : select("alert-assignee", "负责人", st.assignee, r.assignees.map((x) => [x.id, x.name]), "assignee"),
      me.role === "store_manager" && me.stores.length > 1 ? select("alert-store", "门店", st.store, me.stores.map((x) => [x, x]), "store") : storeBox,
      sort),
    pager(r.total, st.offset, size, (o) => go("alerts", { ...st, offset: o })),
    alertList(r.items)));
}

const LAG_ZH = { OK: "正常", WARN: "积压增长", STALLED: "停滞", STOPPED: "已停止", ERR: "错误" };
async function ops() {
  const r = await api("/api/ops/lag");
  const rows = [];
  for (const [group, g] of Object.entries(r.groups)) {
    rows.push(h("tr", {}, h("td", {}, group), h("td", { class: "status-" + g.status }, LAG_ZH[g.status] || g.status), h("td", {}, String(g.lag)),
      h("td", {}, g.partitions.filter((p) => p.lag > 0).map((p) => p.topic + "#" + p.partition + "=" + p.lag).join(" ") || "—")));
  }
  show(h("section", { class: "card" }, h("h2", {}, "消费组积压（Burrow 规则）"),
    r.error ? h("p", { class: "error" }, r.error) : null,
    h("table", { id: "lag" }, h("tr", {}, h("th", {}, "消费组"), h("th", {}, "状态"), h("th", {}, "积压"), h("th", {}, "积压分区")), rows),
    h("p", { class: "muted" }, "正常；积压增长：积压持续增长；停滞：有积压但提交停止；已停止：长时间无提交")));
}

// The score over time with ECharts (shipped in /static/vendor, so the console stays offline):
// dated axis, the bands drawn where the scoring puts them, the value on hover or tap.
const DAY_MS = 24 * 3600 * 1000;
function trendChart(history, bands) {
  const el = h("div", { class: "trend", id: "trend-chart", role: "img", "aria-label": "健康度趋势图" });
  if (!history.length || typeof echarts === "undefined") {
    el.appendChild(h("p", { class: "muted" }, "暂无历史评分"));
    return el;
  }
  const b = bands || { healthy: 70, watch: 40 };
  const area = (from, to, color, name) => [{ yAxis: from, name: name, itemStyle: { color: color } }, { yAxis: to }];
  // At least a week wide, whole days at both ends: one day's points never fill the axis.
  const times = history.map((p) => Date.parse(p.as_of));
  const end = Math.ceil((Math.max(...times) + 1) / DAY_MS) * DAY_MS;
  const start = Math.min(Math.floor(Math.min(...times) / DAY_MS) * DAY_MS, end - 7 * DAY_MS);
  requestAnimationFrame(() => {
    const chart = echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      grid: { left: 40, right: 56, top: 16, bottom: 36 },
      tooltip: { trigger: "axis", confine: true, formatter: (ps) => {
        const p = history[ps[0].dataIndex];
        return time(p.as_of) + "<br/>" + pts(p.score) + " 分 · " + (BAND_ZH[p.band] || p.band);
      } },
      xAxis: { type: "time", minInterval: DAY_MS, min: start, max: end, axisLabel: { formatter: "{M}月{d}日", hideOverlap: true, fontSize: 12 } },
      yAxis: { type: "value", min: 0, max: 100, interval: 20, axisLabel: { fontSize: 12 } },
      series: [{
        type: "line", name: "健康度", showSymbol: history.length < 30, symbolSize: 6,
        data: history.map((p) => [p.as_of, Math.round(p.score * 10) / 10]),
        lineStyle: { width: 2, color: "#2563eb" }, itemStyle: { color: "#2563eb" },
        markArea: { silent: true, label: { position: "right", fontSize: 12, color: "#475569" }, data: [
          area(0, b.watch, "rgba(197,48,48,0.08)", "高风险"),
          area(b.watch, b.healthy, "rgba(183,121,31,0.08)", "关注"),
          area(b.healthy, 100, "rgba(47,129,50,0.08)", "健康")] },
      }],
    });
    new ResizeObserver(() => chart.resize()).observe(el);
  });
  return el;
}

// Where a recommendation comes from, in words: the notes it draws on by date and store.
function basis(r, notes) {
  const byId = Object.fromEntries(notes.map((n) => [n.note_id, n]));
  const said = (r.source_notes || []).map((id) => byId[id] ? day(byId[id].occurred_at) + "店员笔记" : "更早的店员笔记");
  return [...new Set(said)].join("、");
}

async function customer(id) {
  const c = await api("/api/customers/" + encodeURIComponent(id));
  const hl = c.health;
  const max = Math.max(0.0001, ...c.tags.map((t) => t.weight));
  const recos = c.recommendations;
  show(
    h("h2", {}, "客户 " + c.display_name),
    h("p", { class: "muted" }, [c.segment === "b2b_contact" ? "B2B联系人" : "门店会员", c.member_no ? "会员号 " + c.member_no : "", c.phone_masked, c.is_key_contact ? "重点联系人" : "", c.opted_out ? "已关闭个性化推荐" : ""].filter(Boolean).join(" · ")),
    h("div", { class: "grid" },
      h("section", { class: "card", id: "health" }, h("h3", {}, "健康度"),
        hl ? [h("span", { class: "score" }, pts(hl.score)), " ", h("span", { class: "band " + hl.band }, BAND_ZH[hl.band] || hl.band),
          h("p", { class: "muted", id: "trend-7d" }, "7天变化 " + (hl.trend_7d === null ? "—" : delta(hl.trend_7d) + " 分") + " · 可信度 " + Math.round(hl.confidence * 100) + "%" + (hl.stale_sources.length ? " · 数据过期：" + hl.stale_sources.map((x) => SOURCE_ZH[x] || x).join("、") : "")),
          h("ul", { class: "plain reasons" }, hl.reasons.map((r) => h("li", {}, r)))] : h("p", { class: "muted" }, "暂无评分"),
        trendChart(c.history, c.bands)),
      h("section", { class: "card", id: "recommendations" }, h("h3", {}, "到店推荐"),
        recos.length ? [h("p", { class: "reco" }, recos[0].message),
          h("ul", { class: "plain" }, recos.map((r) => h("li", {}, r.name + " " + (r.size ? r.size + "码 " : "") + r.colour + "（库存 " + r.on_hand + " 件）",
            h("div", { class: "muted" }, r.reasons.join("；") + (r.source_notes.length ? " · 依据" + basis(r, c.notes) : "")))))] : h("p", { class: "muted" }, "暂无推荐")),
      h("section", { class: "card", id: "tags" }, h("h3", {}, "标签云"),
        c.tags.length ? tagGroups(c, max) : h("p", { class: "muted" }, "暂无标签")),
      h("section", { class: "card", id: "notes" }, h("h3", {}, "最近笔记（已脱敏）"),
        c.notes.length ? h("ul", { class: "plain" }, c.notes.map((n) => h("li", {}, n.text, h("div", { class: "muted" }, time(n.occurred_at) + " · 门店 " + n.store_id)))) : h("p", { class: "muted" }, "暂无笔记")),
      h("section", { class: "card", id: "customer-alerts" }, h("h3", {}, "预警"), alertList(c.alerts.map((a) => ({ ...a, customer_id: c.customer_id }))))));
}

document.getElementById("login-form").addEventListener("submit", (e) => { e.preventDefault(); login(document.getElementById("key").value.trim()); });
async function pair(code, device) {
  const res = await fetch("/api/pairing/claim", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code: code, device: device }) });
  if (!res.ok) { document.getElementById("pair-error").textContent = res.status === 429 ? "尝试次数过多，请一分钟后再试" : "配对码无效、已使用或已过期"; return; }
  const got = await res.json();
  localStorage.setItem("salespulse-device-key", got.key);
  history.replaceState(null, "", location.pathname);
  login(got.key);
}
document.getElementById("pair-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const device = document.getElementById("pair-device").value.trim() || "平板";
  pair(document.getElementById("pair-code").value.trim(), device);
});
// A scanned QR code opens the console with #pair=CODE: only the device's name is asked.
const scanned = /^#pair=([A-Za-z0-9-]{8,20})$/.exec(location.hash);
if (scanned && !key) { document.getElementById("pair-code").value = scanned[1]; document.getElementById("pair-device").focus(); }
for (const b of document.querySelectorAll("nav button")) b.addEventListener("click", () => go(b.dataset.view));
if (key) login(key);

// Tags by type, each group labelled in words (tablets have no hover): what not to offer
// (不喜欢, 过敏) first and struck through, never drawn like a preference.
function tagGroups(c, max) {
  const groups = c.tag_groups || [];
  return h("div", { class: "cloud" }, groups.map((g) => h("div", { class: "tag-group pol-" + g.polarity },
    h("span", { class: "tag-type" }, (TYPE_ZH[g.type] || g.type) + "："),
    g.tags.map((t) => h("span", { class: "t-" + t.type, title: "权重 " + t.weight.toFixed(3), style: "font-size:" + (12 + 14 * (t.weight / max)).toFixed(0) + "px" }, t.value)))));
}

// The B2B book: a rep's own deals (what each next gate still misses), intent pushes; a sales
// manager's funnel, gate refusals and coaching list. Money arrives as text (Decimal) and is
// shown as yuan.
const STAGE_ZH = { lead: "线索", solution: "方案", quote: "报价", contract: "合同", collection: "回款", won: "回款完成", lost: "输单" };
const PAGE = 20;

function yuan(v) {
  if (v === null || v === undefined || v === "") return "—";
  return "¥" + Number(v).toLocaleString("zh-CN", { minimumFractionDigits: 0, maximumFractionDigits: 2 });
}

async function deals(arg) {
  const state = arg || { stage: "", offset: 0 };
  const q = "/api/deals?limit=" + PAGE + "&offset=" + state.offset + (state.stage ? "&stage=" + state.stage : "");
  const rep = me.role === "sales_rep";
  const [d, pushes, top, mine] = await Promise.all([api(q), api("/api/deals/pushes?limit=5"), api("/api/deals/top3"),
    rep ? api("/api/customers?limit=5") : Promise.resolve(null)]);
  const pick = h("select", { id: "stage-filter", "aria-label": "按阶段筛选" },
    h("option", { value: "" }, "全部阶段"), Object.entries(STAGE_ZH).map(([k, v]) => h("option", { value: k }, v)));
  pick.value = state.stage;
  pick.addEventListener("change", () => go("deals", { stage: pick.value, offset: 0 }));
  const rows = d.items.map((o) => h("tr", { "data-deal": o.opportunity_id },
    h("td", {}, h("a", { onclick: () => go("deal", o.opportunity_id) }, o.name), h("div", { class: "muted" }, o.account_name + " · " + (o.rep_name || o.rep_id))),
    h("td", {}, o.stage_zh, o.intent_at ? h("span", { class: "intent" }, " 高意向") : null,
      o.probability === null ? null : h("div", { class: "muted", title: o.factors.join("；") }, "成交概率 " + Math.round(o.probability * 100) + "%")),
    h("td", {}, o.next_stage ? (o.missing.length ? h("ul", { class: "plain missing" }, o.missing.map((m) => h("li", {}, m))) : h("span", { class: "done" }, "可推进到" + o.next_stage_zh)) : "—"),
    h("td", {}, yuan(o.quote_amount || o.expected_amount), o.competitor ? h("div", { class: "muted" }, o.competitor + " " + yuan(o.competitor_amount)) : null),
    h("td", {}, time(o.updated_at))));
  const pager = h("p", { class: "pager" },
    "共 " + d.total + " 个商机 · 第 " + (state.offset / PAGE + 1) + " / " + Math.max(1, Math.ceil(d.total / PAGE)) + " 页 ",
    state.offset > 0 ? h("button", { onclick: () => go("deals", { ...state, offset: state.offset - PAGE }) }, "上一页") : null, " ",
    state.offset + PAGE < d.total ? h("button", { onclick: () => go("deals", { ...state, offset: state.offset + PAGE }) }, "下一页") : null);
  const tops = rep ? top.items : top.items.slice(0, 9);
  // A rep's home: their TOP-3 and deals, and the contacts they message who need them most.
  const contacts = mine ? h("section", { class: "card", id: "my-customers" }, h("h2", {}, "我的客户（分数最低的 " + mine.items.length + " 位，共 " + mine.total + " 位）"),
    mine.items.length ? h("ul", { class: "plain" }, mine.items.map((c) => h("li", {},
      h("a", { onclick: () => go("customer", c.customer_id), "data-customer": c.customer_id }, who(c)), " ",
      h("span", { class: "band " + c.band }, BAND_ZH[c.band]), " " + pts(c.score) + "分 ", h("span", { class: "muted" }, "7天 " + delta(c.trend_7d))))) : h("p", { class: "muted" }, "暂无客户"),
    h("button", { onclick: () => go("customers") }, "全部客户")) : null;
  show(
    h("section", { class: "card", id: "top3" }, h("h2", {}, "今日TOP3待推进商机"),
      tops.length ? h("ol", { class: "top3" }, tops.map((t) => h("li", {},
        h("strong", {}, t.name), " ", h("span", { class: "muted" }, t.account_name + " · " + t.stage_zh + (me.role === "sales_rep" ? "" : " · " + (t.rep_name || t.rep_id))),
        h("div", {}, "成交概率 " + Math.round(t.probability * 100) + "% · 紧迫度 ×" + t.urgency.toFixed(2)),
        h("ul", { class: "plain factors" }, t.factors.concat(t.urgent_because).map((f) => h("li", {}, f)))))) :
        h("p", { class: "muted" }, "暂无（需先训练成交概率模型）")),
    contacts,
    h("section", { class: "card", id: "pushes" }, h("h2", {}, "高意向推送"),
      pushes.length ? h("ul", { class: "plain" }, pushes.map((p) => h("li", {}, h("strong", {}, p.title),
        h("div", { class: "muted" }, time(p.raised_at) + " · 竞品报价：" + p.competitor_quote),
        p.conversation.length ? h("ul", { class: "plain talks" }, p.conversation.map((t) => h("li", {}, t))) : null))) : h("p", { class: "muted" }, "暂无推送")),
    h("section", { class: "card", id: "deals" }, h("h2", {}, me.role === "sales_rep" ? "我的商机" : "商机"), pick, pager,
      d.items.length ? h("table", { id: "deal-table" }, h("tr", {}, h("th", {}, "商机"), h("th", {}, "阶段"), h("th", {}, "下一阶段还缺"), h("th", {}, "金额"), h("th", {}, "最近更新")), rows) : h("p", { class: "muted" }, "暂无商机")));
}

async function deal(id) {
  const rows = await api("/api/deals/" + encodeURIComponent(id) + "/audit");
  show(h("section", { class: "card", id: "audit" }, h("h2", {}, "商机 " + id + " · 阶段变更记录"),
    h("button", { onclick: () => go("deals") }, "返回"),
    rows.length ? h("ul", { class: "plain" }, rows.map((r) => h("li", { class: r.decision === "refused" ? "refused" : "accepted" },
      h("strong", {}, (STAGE_ZH[r.from_stage] || "—") + " → " + STAGE_ZH[r.to_stage] + (r.decision === "refused" ? "（被拦截）" : "（已通过）")),
      h("div", {}, r.reason), h("div", { class: "muted" }, time(r.requested_at) + " · " + r.requested_by + " · 规则版本 " + r.rule_version)))) : h("p", { class: "muted" }, "暂无记录")));
}

async function funnel() {
  const [f, coach, graded, quality, fresh] = await Promise.all([api("/api/deals/funnel"), api("/api/deals/coaching"),
    api("/api/deals/accounts?limit=10"), api("/api/deals/quality"), api("/api/deals/new-reps")]);
  const pct = (v) => (v === null ? "—" : Math.round(v * 100) + "%");
  show(
    h("section", { class: "card", id: "funnel" }, h("h2", {}, "销售漏斗" + (me.region ? " · " + me.region : "")),
      h("table", {}, h("tr", {}, h("th", {}, "阶段"), h("th", {}, "当前"), h("th", {}, "曾到达"), h("th", {}, "转化到下一阶段")),
        f.stages.map((s) => h("tr", {}, h("td", {}, s.stage_zh), h("td", {}, String(s.now)), h("td", {}, String(s.reached)), h("td", {}, pct(s.to_next))))),
      h("p", { class: "muted" }, "输单 " + f.lost + " 个")),
    h("section", { class: "card", id: "refusals" }, h("h2", {}, "阶段拦截（缺什么）"),
      f.refusals.length ? h("ul", { class: "plain" }, f.refusals.map((r) => h("li", {}, r.missing + "：" + r.count + " 次"))) : h("p", { class: "muted" }, "暂无拦截")),
    h("section", { class: "card", id: "grading" }, h("h2", {}, "客户分级"),
      h("p", {}, ["A", "B", "C"].map((g) => g + "类 " + (graded.by_grade[g] || 0) + " 家").join(" · ")),
      h("ul", { class: "plain" }, graded.items.map((a) => h("li", {}, h("strong", {}, a.grade + " "), a.name + "（" + Math.round(a.grade_score) + "分）",
        h("div", { class: "muted" }, a.grade_reasons.join("；")))))),
    h("section", { class: "card", id: "quality" }, h("h2", {}, "接触质量"),
      quality.closed_deals ? h("p", {}, "已结束商机中 " + pct(quality.quality_share) + " 做过≥45分钟且含定制参数页的演示；赢单率 " +
        pct(quality.won_rate_quality) + "，其余 " + pct(quality.won_rate_rest) + (quality.lift ? "（" + quality.lift + " 倍）" : "")) : h("p", { class: "muted" }, "暂无已结束商机")),
    h("section", { class: "card", id: "new-reps" }, h("h2", {}, "新人首单周期"),
      fresh.length ? h("ul", { class: "plain" }, fresh.map((r) => h("li", {}, r.name + "（" + r.rep_id + "，" + r.started_on + " 入职）：" +
        (r.first_order_days === null ? "尚未成交" : r.first_order_days + " 天")))) : h("p", { class: "muted" }, "近一年没有新入职销售")),
    h("section", { class: "card", id: "coaching" }, h("h2", {}, "辅导清单（更新延迟超过24小时）"),
      coach.length ? h("table", {}, h("tr", {}, h("th", {}, "销售"), h("th", {}, "延迟更新"), h("th", {}, "延迟中位数"), h("th", {}, "意向跟进超时")),
        coach.map((c) => h("tr", {}, h("td", {}, (c.rep_name || c.rep_id) + " · " + c.region), h("td", {}, c.late + " / " + c.activities), h("td", {}, c.median_delay_hours + " 小时"),
          h("td", {}, c.follow_up_timeout_rate === null ? "—" : c.follow_up_timeouts + " / " + c.intent_deals)))) : h("p", { class: "muted" }, "近30天没有延迟更新的销售")));
}

// The money side: the three-way match board (colour chips filter it), deliverable new contract
// value drilled down region -> product line -> rep, forecast accuracy, tender evidence per
// hospital, and (finance) the distributors' rebate statements with CSV/XLSX downloads.
const MATCH_ZH = { green: "绿·已匹配", yellow: "黄·缺单据", red: "红·金额不符或异常", pending: "待齐" };
const LEVEL_ZH = { region: "大区", product_line: "产品线", rep: "销售" };

async function download(path, filename) {
  const res = await fetch(path, { headers: { Authorization: "Bearer " + key } });
  if (!res.ok) throw new Error("下载失败（" + res.status + "）");
  const a = h("a", { href: URL.createObjectURL(await res.blob()), download: filename });
  document.body.appendChild(a); a.click(); a.remove();
}

async function money(arg) {
  const state = { status: "", offset: 0, drill: [], statement: null, ...(arg || {}) };
  const drillBy = ["region", "product_line", "rep"][state.drill.length] || "rep";
  const dq = "/api/money/deliverable?by=" + drillBy + (state.drill[0] ? "&region=" + encodeURIComponent(state.drill[0]) : "") +
    (state.drill[1] ? "&product_line=" + encodeURIComponent(state.drill[1]) : "");
  const mq = "/api/money/match?limit=" + PAGE + "&offset=" + state.offset + (state.status ? "&status=" + state.status : "");
  const finance = me.role === "finance" || me.role === "admin";
  const [board, deliv, fc, tender, listed] = await Promise.all([api(mq), api(dq), api("/api/money/forecast?by=" + (me.role === "sales_rep" ? "rep" : "region")),
    api("/api/money/tender"), finance ? api("/api/money/statements") : Promise.resolve([])]);
  const chip = (s, label, n) => h("button", { class: state.status === s ? "on" : "", onclick: () => go("money", { ...state, status: s, offset: 0 }) }, label + "（" + n + "）");
  const total = Object.values(board.counts).reduce((a, b) => a + b, 0);
  const chips = h("div", { class: "chips", id: "match-chips" }, chip("", "全部", total),
    ["red", "yellow", "pending", "green"].map((s) => chip(s, MATCH_ZH[s], board.counts[s])));
  const pager = h("p", { class: "pager" }, "共 " + board.total + " 份合同 · 第 " + (state.offset / PAGE + 1) + " / " + Math.max(1, Math.ceil(board.total / PAGE)) + " 页 ",
    state.offset > 0 ? h("button", { onclick: () => go("money", { ...state, offset: state.offset - PAGE }) }, "上一页") : null, " ",
    state.offset + PAGE < board.total ? h("button", { onclick: () => go("money", { ...state, offset: state.offset + PAGE }) }, "下一页") : null);
  const matchTable = board.items.length ? h("table", { id: "match-table" },
    h("tr", {}, h("th", {}, "合同"), h("th", {}, "状态"), h("th", {}, "订单 / 开票 / 回款"), h("th", {}, "变更时间")),
    board.items.map((r) => h("tr", { "data-contract": r.contract_id },
      h("td", {}, r.contract_id, h("div", { class: "muted" }, r.distributor_id + (r.rep_id ? " · " + r.rep_id + " · " + r.region : ""))),
      h("td", {}, h("span", { class: "st-" + r.status }, MATCH_ZH[r.status]), r.reasons.length ? h("ul", { class: "plain" }, r.reasons.map((x) => h("li", {}, x))) : null),
      h("td", { class: "money-num" }, yuan(r.order_amount) + " / " + yuan(r.invoiced) + " / " + yuan(r.paid),
        r.rebate_estimate ? h("div", { class: "muted" }, "返点预估 " + yuan(r.rebate_estimate.estimate) + "（" + r.rebate_estimate.quarter + " 累计）") : null),
      h("td", {}, time(r.changed_at))))) : h("p", { class: "muted" }, "暂无合同");
  const crumbs = h("p", { class: "crumbs" }, h("a", { onclick: () => go("money", { ...state, drill: [] }) }, "全部"),
    state.drill.map((k, i) => h("a", { onclick: () => go("money", { ...state, drill: state.drill.slice(0, i + 1) }) }, "› " + k)));
  const delivTable = h("table", { id: "deliverable-table" },
    h("tr", {}, h("th", {}, LEVEL_ZH[drillBy]), h("th", { class: "money-num" }, "合同额"), h("th", { class: "money-num" }, "可交付新签额"), h("th", {}, "剔除：老客户复购 / 未排产 / 非现金")),
    deliv.items.map((i) => h("tr", {},
      h("td", {}, state.drill.length < 2 ? h("a", { onclick: () => go("money", { ...state, drill: state.drill.concat([i.key]) }) }, i.key) : i.key),
      h("td", { class: "money-num" }, yuan(i.raw)), h("td", { class: "money-num" }, yuan(i.deliverable)),
      h("td", { class: "muted" }, yuan(i.repeat_orders) + " / " + yuan(i.unscheduled) + " / " + yuan(i.non_cash)))));
  const fcTable = fc.items.length ? h("table", { id: "forecast-table" },
    h("tr", {}, h("th", {}, me.role === "sales_rep" ? "销售" : "大区"), h("th", {}, "月份"), h("th", { class: "money-num" }, "预测回款"), h("th", { class: "money-num" }, "30天内实际回款"), h("th", {}, "准确率")),
    fc.items.map((i) => h("tr", {}, h("td", {}, i.key), h("td", {}, i.month), h("td", { class: "money-num" }, yuan(i.forecast)),
      h("td", { class: "money-num" }, yuan(i.collected)), h("td", {}, i.accuracy === null ? "—" : Math.round(i.accuracy * 100) + "%")))) : h("p", { class: "muted" }, "暂无已到期的预测");
  const tenderTable = tender.length ? h("table", { id: "tender-table" },
    h("tr", {}, h("th", {}, "医院"), h("th", {}, "按期交付"), h("th", {}, "故障报修"), h("th", {}, "首次远程响应（中位 / P90）"), h("th", {}, "")),
    tender.slice(0, 30).map((t) => h("tr", {}, h("td", {}, t.hospital_account_id),
      h("td", {}, t.on_time + " / " + t.deliveries + "（" + Math.round(t.on_time_rate * 100) + "%）"), h("td", {}, String(t.faults)),
      h("td", {}, t.median_response_hours === null ? "—" : t.median_response_hours + " / " + t.p90_response_hours + " 小时"),
      h("td", {}, h("button", { onclick: () => download("/api/money/tender?fmt=csv&hospital=" + encodeURIComponent(t.hospital_account_id), "投标证明-" + t.hospital_account_id + ".csv").catch(fail) }, "导出"))))) : h("p", { class: "muted" }, "近12个月暂无交付记录");
  const sections = [
    h("section", { class: "card", id: "match" }, h("h2", {}, "三单匹配（销售-回款-开票）"), chips, pager, matchTable),
    h("section", { class: "card", id: "deliverable" }, h("h2", {}, "可交付新签额"),
      h("p", {}, "合同额 " + yuan(deliv.raw) + " · 可交付 " + yuan(deliv.deliverable) + "（差 " + deliv.gap_pct + "%）"), crumbs, delivTable),
    h("section", { class: "card", id: "forecast" }, h("h2", {}, "回款预测准确率"),
      h("p", {}, fc.overall === null ? "—" : "总体 " + Math.round(fc.overall * 100) + "%（30天内实际回款 ÷ 预测）"), fcTable),
    h("section", { class: "card", id: "tender" }, h("h2", {}, "投标证明材料（近12个月）"), tenderTable),
  ];
  if (finance) {
    const pick = h("select", { id: "statement-pick", "aria-label": "选择对账单" }, h("option", { value: "" }, "选择经销商与月份"),
      listed.map((s) => h("option", { value: s.distributor_id + "/" + s.month }, s.distributor_id + " · " + s.month + " · " + yuan(s.total))));
    pick.value = state.statement || "";
    pick.addEventListener("change", () => go("money", { ...state, statement: pick.value }));
    let body = h("p", { class: "muted" }, "请选择一份对账单");
    if (state.statement) {
      const st = await api("/api/money/statements/" + state.statement);
      const file = "返点对账单-" + state.statement.replace("/", "-");
      body = h("div", {},
        h("p", {}, st.distributor_id + " · " + st.month + "（" + st.quarter + " 季度截至月末）· 合计 ", h("strong", {}, yuan(st.total)), " · 规则版本 " + st.rule_versions.join("、")),
        h("button", { onclick: () => download("/api/money/statements/" + state.statement + "?fmt=xlsx", file + ".xlsx").catch(fail) }, "下载 XLSX"), " ",
        h("button", { onclick: () => download("/api/money/statements/" + state.statement + "?fmt=csv", file + ".csv").catch(fail) }, "下载 CSV"),
        h("table", { id: "statement-table" }, h("tr", {}, h("th", {}, "#"), h("th", {}, "说明"), h("th", { class: "money-num" }, "基数"), h("th", { class: "money-num" }, "金额"), h("th", {}, "计算输入")),
          st.lines.map((l) => h("tr", {}, h("td", {}, String(l.line_no)), h("td", {}, l.title), h("td", { class: "money-num" }, yuan(l.base)),
            h("td", { class: "money-num" }, yuan(l.amount)), h("td", { class: "muted" }, Object.entries(l.inputs).map(([k, v]) => k + "=" + v).join("；"))))));
    }
    sections.splice(1, 0, h("section", { class: "card", id: "statements" }, h("h2", {}, "经销商返点对账单"), pick, body));
  }
  show(...sections);
}


// Admin: pair a tablet (a code and QR for a role and scope, 10 minutes, once) and revoke keys.
const ROLE_OPTIONS = [["store_manager", "店长"], ["sales_rep", "销售代表"], ["sales_manager", "销售经理"], ["cs", "客户成功专员"], ["finance", "财务"], ["ops", "运维"]];
async function devices(offer) {
  const list = await api("/api/keys");
  const f = {
    name: h("input", { id: "pair-name", placeholder: "使用人，如 上海店长" }),
    role: h("select", { id: "pair-role", "aria-label": "角色" }, ROLE_OPTIONS.map(([v, t]) => h("option", { value: v }, t))),
    scope: h("input", { id: "pair-scope", placeholder: "门店编号 / 销售编号 / 专员编号 / 大区" }),
  };
  const make = async () => {
    const role = f.role.value, scope = f.scope.value.trim();
    const body = { name: f.name.value.trim() || "平板", role: role, stores: role === "store_manager" && scope ? scope.split(/[,，\s]+/) : [],
      rep_id: role === "sales_rep" ? scope : "", specialist_id: role === "cs" ? scope : "", region: role === "sales_manager" ? scope : "" };
    const res = await fetch("/api/pairing", { method: "POST", headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!res.ok) { out.replaceChildren(h("p", { class: "error" }, "无法生成配对码：请检查角色所需的门店、销售编号、专员编号或大区")); return; }
    go("devices", await res.json());
  };
  const out = h("div", { id: "pair-offer" });
  if (offer) out.replaceChildren(h("p", {}, "配对码 ", h("strong", { class: "pair-code" }, offer.code), "（" + time(offer.expires_at) + " 前有效，只能使用一次）"),
    h("img", { src: offer.qr, alt: "配对二维码", class: "qr" }), h("p", { class: "muted" }, "用平板扫描二维码，或在登录页输入配对码。"));
  show(h("section", { class: "card", id: "pairing" }, h("h2", {}, "平板配对"),
      h("div", { class: "filters" }, f.name, f.role, f.scope, h("button", { class: "primary", id: "pair-make", onclick: make }, "生成配对码")), out),
    h("section", { class: "card", id: "keys" }, h("h2", {}, "访问密钥与设备"),
      h("table", {}, h("tr", {}, h("th", {}, "使用人"), h("th", {}, "角色"), h("th", {}, "范围"), h("th", {}, "创建时间"), h("th", {}, "")),
        list.map((k) => h("tr", { "data-key": k.key_id }, h("td", {}, k.name), h("td", {}, (ROLE_OPTIONS.find((r) => r[0] === k.role) || [k.role, k.role === "admin" ? "管理员" : k.role])[1]),
          h("td", {}, [k.stores.join("、"), k.rep_id, k.specialist_id, k.region].filter(Boolean).join(" ") || "全部"),
          h("td", {}, time(k.created_at)),
          h("td", {}, k.revoked ? h("span", { class: "muted" }, "已吊销") : h("button", { class: "revoke", onclick: async (e) => {
            e.target.disabled = true;
            await api("/api/keys/" + k.key_id + "/revoke", { method: "POST", body: "{}" });
            go("devices");
          } }, "吊销")))))));
}
