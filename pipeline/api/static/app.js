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
let key = sessionStorage.getItem("salespulse-key") || "";
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

async function api(path, options) {
  const res = await fetch(path, { ...(options || {}), headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" } });
  if (res.status === 401) { logout(); throw new Error("请重新登录"); }
  if (res.status === 404) throw new Error("未找到，或不在您的权限范围内");
  if (res.status === 429) throw new Error("请求过于频繁，请稍后再试");
  if (!res.ok) throw new Error("服务器错误（" + res.status + "）");
  return res.json();
}

function view() { return document.getElementById("view"); }
function show(...nodes) { const v = view(); v.replaceChildren(...nodes); v.hidden = false; }
function fail(err) { show(h("p", { class: "error", role: "alert" }, err.message)); }
function time(iso) { return iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : "—"; }

function logout() {
  key = ""; me = null; sessionStorage.removeItem("salespulse-key");
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
  sessionStorage.setItem("salespulse-key", key);
  document.getElementById("login").hidden = true;
  document.getElementById("nav").hidden = false;
  const who = document.getElementById("who");
  who.replaceChildren(me.name + "（" + me.role_zh + "） ", h("a", { onclick: logout, id: "logout" }, "退出"));
  const allowed = {
    dashboard: ["admin", "store_manager"], search: ["admin", "store_manager", "sales_rep", "cs"],
    alerts: ["admin", "store_manager", "sales_rep", "cs"], ops: ["admin", "ops"],
  };
  for (const [name, roles] of Object.entries(allowed)) document.getElementById("nav-" + name).hidden = !roles.includes(me.role);
  go(me.role === "ops" ? "ops" : me.role === "store_manager" ? "dashboard" : "alerts");
}

function go(name, arg) {
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.view === name);
  ({ dashboard, search, alerts, ops, customer })[name](arg).catch(fail);
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
  const pick = stores.length > 1 ? stores.map((s) => h("button", { onclick: () => go("dashboard", s) }, s)) : [];
  show(
    h("h2", {}, "门店看板 · " + d.store_id + " · " + d.day), ...pick,
    h("div", { class: "grid" },
      h("section", { class: "card", id: "visitors" }, h("h3", {}, "今日到店会员（" + d.visitors.length + "）"),
        d.visitors.length ? h("ul", { class: "plain" }, d.visitors.map((v) => h("li", {},
          h("a", { onclick: () => go("customer", v.customer_id) }, v.customer_id), " ",
          h("span", { class: "muted" }, (v.member_no || "") + " " + (v.phone_masked || "") + " " + time(v.last_visit)),
          v.message ? h("div", { class: "reco" }, v.message) : h("div", { class: "muted" }, "暂无推荐")))) : h("p", { class: "muted" }, "今天还没有识别到会员")),
      h("section", { class: "card" }, h("h3", {}, "高风险客户"),
        d.at_risk.length ? h("ul", { class: "plain" }, d.at_risk.map((c) => h("li", {},
          h("a", { onclick: () => go("customer", c.customer_id) }, c.customer_id), " ", Math.round(c.score) + "分 ",
          h("div", { class: "muted" }, (c.reasons || []).slice(0, 2).join("；"))))) : h("p", { class: "muted" }, "暂无")),
      h("section", { class: "card" }, h("h3", {}, "待处理预警"), alertList(d.alerts))));
}

function alertList(items) {
  if (!items.length) return h("p", { class: "muted" }, "暂无预警");
  return h("ul", { class: "plain alerts" }, items.map((a) => h("li", { "data-alert": a.alert_id },
    h("strong", {}, a.title), " ", h("span", { class: "muted" }, STATUS_ZH[a.status] || a.status), h("br", {}),
    h("a", { onclick: () => go("customer", a.customer_id) }, a.customer_id),
    h("span", { class: "muted" }, " 负责人 " + a.assignee + " · " + time(a.raised_at)), " ",
    a.status === "open" ? h("button", { class: "ack", onclick: (e) => act(a, "acknowledge", e.target) }, "确认") : null, " ",
    ["open", "acknowledged", "suppressed"].includes(a.status) ? h("button", { class: "resolve", onclick: (e) => act(a, "resolve", e.target) }, "解决") : null)));
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

async function search() {
  const input = h("input", { id: "q", placeholder: "会员号 / 手机号 / 138****5678" });
  const out = h("div", {});
  const run = async () => {
    try {
      const rows = await api("/api/search?q=" + encodeURIComponent(input.value.trim()));
      out.replaceChildren(rows.length ? h("ul", { class: "plain" }, rows.map((r) => h("li", {},
        h("a", { onclick: () => go("customer", r.customer_id) }, r.customer_id), " ",
        h("span", { class: "muted" }, [r.member_no, r.phone_masked, r.band ? BAND_ZH[r.band] : ""].filter(Boolean).join(" · "))))) : h("p", { class: "muted" }, "没有找到"));
    } catch (e) { out.replaceChildren(h("p", { class: "error" }, e.message)); }
  };
  show(h("section", { class: "card" }, h("h2", {}, "客户查询"), input, " ", h("button", { class: "primary", onclick: run, id: "search-button" }, "查询"), out));
}

async function alerts() {
  const items = await api("/api/alerts?limit=50");
  show(h("section", { class: "card" }, h("h2", {}, "预警（" + items.length + "）"), alertList(items)));
}

async function ops() {
  const r = await api("/api/ops/lag");
  const rows = [];
  for (const [group, g] of Object.entries(r.groups)) {
    rows.push(h("tr", {}, h("td", {}, group), h("td", { class: "status-" + g.status }, g.status), h("td", {}, String(g.lag)),
      h("td", {}, g.partitions.filter((p) => p.lag > 0).map((p) => p.topic + "#" + p.partition + "=" + p.lag).join(" ") || "—")));
  }
  show(h("section", { class: "card" }, h("h2", {}, "消费组积压（Burrow 规则）"),
    r.error ? h("p", { class: "error" }, r.error) : null,
    h("table", { id: "lag" }, h("tr", {}, h("th", {}, "消费组"), h("th", {}, "状态"), h("th", {}, "积压"), h("th", {}, "积压分区")), rows),
    h("p", { class: "muted" }, "OK 正常；WARN 积压持续增长；STALLED 有积压但提交停止；STOPPED 长时间无提交")));
}

function trendChart(history) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "trend"); svg.setAttribute("viewBox", "0 0 600 160"); svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "健康度趋势");
  if (history.length < 2) return svg;
  const xs = history.map((p) => Date.parse(p.as_of)); const x0 = Math.min(...xs); const x1 = Math.max(...xs) || x0 + 1;
  const pt = (p) => [20 + 560 * ((Date.parse(p.as_of) - x0) / Math.max(1, x1 - x0)), 150 - 1.4 * p.score];
  for (const [y, label] of [[70, "健康线"], [45, "风险线"]]) {
    const line = document.createElementNS(ns, "line");
    line.setAttribute("x1", "20"); line.setAttribute("x2", "580"); line.setAttribute("y1", String(150 - 1.4 * y)); line.setAttribute("y2", String(150 - 1.4 * y));
    line.setAttribute("stroke", "#e4e7eb"); line.setAttribute("stroke-dasharray", "4 4"); svg.appendChild(line);
    const t = document.createElementNS(ns, "text"); t.setAttribute("x", "582"); t.setAttribute("y", String(154 - 1.4 * y));
    t.setAttribute("font-size", "10"); t.setAttribute("fill", "#616e7c"); t.textContent = label; svg.appendChild(t);
  }
  const path = document.createElementNS(ns, "polyline");
  path.setAttribute("points", history.map((p) => pt(p).join(",")).join(" "));
  path.setAttribute("fill", "none"); path.setAttribute("stroke", "#2563eb"); path.setAttribute("stroke-width", "2");
  svg.appendChild(path);
  return svg;
}

async function customer(id) {
  const c = await api("/api/customers/" + encodeURIComponent(id));
  const hl = c.health;
  const max = Math.max(0.0001, ...c.tags.map((t) => t.weight));
  const recos = c.recommendations;
  show(
    h("h2", {}, "客户 " + c.customer_id),
    h("p", { class: "muted" }, [c.segment === "b2b_contact" ? "B2B联系人" : "门店会员", c.member_no, c.phone_masked, c.is_key_contact ? "重点联系人" : "", c.opted_out ? "已关闭个性化推荐" : ""].filter(Boolean).join(" · ")),
    h("div", { class: "grid" },
      h("section", { class: "card", id: "health" }, h("h3", {}, "健康度"),
        hl ? [h("span", { class: "score" }, String(Math.round(hl.score))), " ", h("span", { class: "band " + hl.band }, BAND_ZH[hl.band] || hl.band),
          h("p", { class: "muted" }, "7天变化 " + (hl.trend_7d === null ? "—" : (hl.trend_7d > 0 ? "+" : "") + hl.trend_7d) + " · 置信度 " + hl.confidence.toFixed(2) + (hl.stale_sources.length ? " · 数据过期：" + hl.stale_sources.join("、") : "")),
          h("ul", { class: "plain reasons" }, hl.reasons.map((r) => h("li", {}, r)))] : h("p", { class: "muted" }, "暂无评分"),
        trendChart(c.history)),
      h("section", { class: "card", id: "recommendations" }, h("h3", {}, "到店推荐"),
        recos.length ? [h("p", { class: "reco" }, recos[0].message),
          h("ul", { class: "plain" }, recos.map((r) => h("li", {}, r.name + " " + (r.size ? r.size + "码 " : "") + r.colour + "（库存" + r.on_hand + "）",
            h("div", { class: "muted" }, r.reasons.join("；") + (r.source_notes.length ? " · 来自笔记 " + r.source_notes.join("、") : "")))))] : h("p", { class: "muted" }, "暂无推荐")),
      h("section", { class: "card", id: "tags" }, h("h3", {}, "标签云"),
        c.tags.length ? tagGroups(c, max) : h("p", { class: "muted" }, "暂无标签")),
      h("section", { class: "card", id: "notes" }, h("h3", {}, "最近笔记（已脱敏）"),
        c.notes.length ? h("ul", { class: "plain" }, c.notes.map((n) => h("li", {}, n.text, h("div", { class: "muted" }, time(n.occurred_at) + " · " + n.store_id)))) : h("p", { class: "muted" }, "暂无笔记")),
      h("section", { class: "card", id: "customer-alerts" }, h("h3", {}, "预警"), alertList(c.alerts.map((a) => ({ ...a, customer_id: c.customer_id }))))));
}

document.getElementById("login-form").addEventListener("submit", (e) => { e.preventDefault(); login(document.getElementById("key").value.trim()); });
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
