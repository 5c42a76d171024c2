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
    deals: ["admin", "sales_manager", "sales_rep"], funnel: ["admin", "sales_manager"],
    money: ["admin", "finance", "sales_manager", "sales_rep"],
  };
  for (const [name, roles] of Object.entries(allowed)) document.getElementById("nav-" + name).hidden = !roles.includes(me.role);
  const home = { ops: "ops", store_manager: "dashboard", sales_rep: "deals", sales_manager: "funnel", finance: "money" };
  go(home[me.role] || "alerts");
}

function go(name, arg) {
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.view === name);
  ({ dashboard, search, alerts, ops, customer, deals, funnel, deal, money })[name](arg).catch(fail);
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
          h("p", { class: "muted" }, "7天变化 " + (hl.trend_7d === null ? "—" : (hl.trend_7d > 0 ? "+" : "") + hl.trend_7d.toFixed(1)) + " · 置信度 " + hl.confidence.toFixed(2) + (hl.stale_sources.length ? " · 数据过期：" + hl.stale_sources.map((x) => SOURCE_ZH[x] || x).join("、") : "")),
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
  const [d, pushes, top] = await Promise.all([api(q), api("/api/deals/pushes?limit=5"), api("/api/deals/top3")]);
  const pick = h("select", { id: "stage-filter", "aria-label": "按阶段筛选" },
    h("option", { value: "" }, "全部阶段"), Object.entries(STAGE_ZH).map(([k, v]) => h("option", { value: k }, v)));
  pick.value = state.stage;
  pick.addEventListener("change", () => go("deals", { stage: pick.value, offset: 0 }));
  const rows = d.items.map((o) => h("tr", { "data-deal": o.opportunity_id },
    h("td", {}, h("a", { onclick: () => go("deal", o.opportunity_id) }, o.name), h("div", { class: "muted" }, o.account_name + " · " + o.rep_id)),
    h("td", {}, o.stage_zh, o.intent_at ? h("span", { class: "intent" }, " 高意向") : null,
      o.probability === null ? null : h("div", { class: "muted", title: o.factors.join("；") }, "成交概率 " + Math.round(o.probability * 100) + "%")),
    h("td", {}, o.next_stage ? (o.missing.length ? h("ul", { class: "plain missing" }, o.missing.map((m) => h("li", {}, m))) : h("span", { class: "done" }, "可推进到" + o.next_stage_zh)) : "—"),
    h("td", {}, yuan(o.quote_amount || o.expected_amount), o.competitor ? h("div", { class: "muted" }, o.competitor + " " + yuan(o.competitor_amount)) : null),
    h("td", {}, time(o.updated_at))));
  const pager = h("p", { class: "pager" },
    "共 " + d.total + " 个商机 · 第 " + (state.offset / PAGE + 1) + " / " + Math.max(1, Math.ceil(d.total / PAGE)) + " 页 ",
    state.offset > 0 ? h("button", { onclick: () => go("deals", { ...state, offset: state.offset - PAGE }) }, "上一页") : null, " ",
    state.offset + PAGE < d.total ? h("button", { onclick: () => go("deals", { ...state, offset: state.offset + PAGE }) }, "下一页") : null);
  const mine = me.role === "sales_rep" ? top.items : top.items.slice(0, 9);
  show(
    h("section", { class: "card", id: "top3" }, h("h2", {}, "今日TOP3待推进商机"),
      mine.length ? h("ol", { class: "top3" }, mine.map((t) => h("li", {},
        h("strong", {}, t.name), " ", h("span", { class: "muted" }, t.account_name + " · " + t.stage_zh + (me.role === "sales_rep" ? "" : " · " + t.rep_id)),
        h("div", {}, "成交概率 " + Math.round(t.probability * 100) + "% · 紧迫度 ×" + t.urgency.toFixed(2)),
        h("ul", { class: "plain factors" }, t.factors.concat(t.urgent_because).map((f) => h("li", {}, f)))))) :
        h("p", { class: "muted" }, "暂无（需先训练成交概率模型）")),
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
        coach.map((c) => h("tr", {}, h("td", {}, c.rep_id + " · " + c.region), h("td", {}, c.late + " / " + c.activities), h("td", {}, c.median_delay_hours + " 小时"),
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
