"""Stage gates: which moves a deal may make, and what is missing when it may not.

The rules are data (``gates.yaml``), validated here; ``judge`` is pure: an opportunity's state
and a requested stage in, the missing items in Simplified Chinese out (none: accepted).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline import rulefile
from schemas.crm import DOC_TYPE_ZH, ROLE_ZH, STAGE_ZH, STAGES

FIELD_ZH = {"budget_range": "预算范围", "decision_roles": "决策链角色", "po_number": "PO编号"}
APPROVER_ZH = {"director": "总监", "manager": "经理", "finance": "财务"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Gate(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    to_stage: Literal["solution", "quote", "contract", "collection", "won"]
    kind: Literal["document", "approval"]
    # document: an uploaded document of this type, carrying these fields
    doc_type: Literal["needs_survey", "po_acceptance", "proposal", "contract", "other"] | None = None
    required_fields: list[Literal["budget_range", "decision_roles", "po_number"]] = []
    min_decision_roles: int = Field(default=1, ge=1, le=7)
    # approval: the deal's latest quote above this amount needs an approval by this role
    quote_over: Decimal | None = Field(default=None, ge=0)
    approver_role: Literal["director", "manager", "finance"] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Gate:
        if self.kind == "document" and self.doc_type is None:
            raise ValueError(f"gate {self.id}: a document gate needs doc_type")
        if self.kind == "approval" and (self.quote_over is None or self.approver_role is None):
            raise ValueError(f"gate {self.id}: an approval gate needs quote_over and approver_role")
        return self


class GateRules(_Strict):
    version: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:\-]+$")
    allow_skip: bool = False
    allow_back: bool = True
    gates: list[Gate] = []

    @model_validator(mode="after")
    def _unique(self) -> GateRules:
        ids = [g.id for g in self.gates]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"gate ids repeated: {sorted(dup)}")
        return self


Loaded = rulefile.Loaded[GateRules]
FILE = rulefile.Kind(GateRules, "gates.yaml", "pipeline.deals")
parse, shipped, load, successor = FILE.parse, FILE.shipped, FILE.load, FILE.successor


def money(v: Any) -> Decimal:
    return Decimal(str(v))


def yuan(v: Decimal) -> str:
    return f"¥{v:,.2f}"


def judge(opp: dict[str, Any] | None, to_stage: str, rules: GateRules) -> list[str]:
    """The missing items, in Chinese, that keep ``opp`` from moving to ``to_stage``; [] = accepted."""
    return [text for _code, text in check(opp, to_stage, rules)]


def check(opp: dict[str, Any] | None, to_stage: str, rules: GateRules) -> list[tuple[str, str]]:
    """As ``judge``, each item with a stable code (the gate's id, or unknown_deal, closed,
    same_stage, no_going_back, skipped_stages) to count refusals by."""
    if opp is None:
        return [("unknown_deal", "未找到该商机（请先创建商机）")]
    stage = opp["stage"]
    if stage in ("won", "lost"):
        return [("closed", f"商机已关闭（{STAGE_ZH[stage]}），不能再变更阶段")]
    if to_stage == stage:
        return [("same_stage", f"商机已处于「{STAGE_ZH[stage]}」阶段")]
    if to_stage == "lost":
        return []
    here, there = STAGES.index(stage), STAGES.index(to_stage)
    if there < here:
        return [] if rules.allow_back else [("no_going_back", f"不允许退回到「{STAGE_ZH[to_stage]}」阶段")]
    missing: list[tuple[str, str]] = []
    if there > here + 1 and not rules.allow_skip:
        skipped = "、".join(STAGE_ZH[s] for s in STAGES[here + 1 : there])
        missing.append(("skipped_stages", f"不能跳过阶段：{skipped}"))
    for gate in rules.gates:
        # a skip (where allowed) must still pass the gates of every stage it passes
        if STAGES.index(gate.to_stage) <= here or STAGES.index(gate.to_stage) > there:
            continue
        missing.extend((gate.id, text) for text in _gate(opp, gate))
    return missing


CODE_ZH = {
    "unknown_deal": "商机不存在",
    "closed": "商机已关闭",
    "same_stage": "已处于该阶段",
    "no_going_back": "不允许退回",
    "skipped_stages": "跳过阶段",
}


def label(code: str, rules: GateRules) -> str:
    """A refusal code as a sales manager reads it."""
    if code in CODE_ZH:
        return CODE_ZH[code]
    gate = next((g for g in rules.gates if g.id == code), None)
    if gate is None:
        return code
    if gate.kind == "document" and gate.doc_type is not None:
        return f"{STAGE_ZH[gate.to_stage]}前需{DOC_TYPE_ZH[gate.doc_type]}"
    return f"报价超过{yuan(gate.quote_over or Decimal(0))}需{APPROVER_ZH[gate.approver_role or 'director']}审批"


def _gate(opp: dict[str, Any], gate: Gate) -> list[str]:
    if gate.kind == "document":
        assert gate.doc_type is not None  # noqa: S101  # checked by the model
        name = DOC_TYPE_ZH[gate.doc_type]
        docs = opp.get("docs", {}).get(gate.doc_type, [])
        if not docs:
            need = "、".join(FIELD_ZH[f] for f in gate.required_fields)
            return [f"缺少{name}" + (f"（必填：{need}）" if need else "")]
        best: list[str] | None = None
        for doc in docs:  # any one complete document of the type is enough
            lacks = _lacking(doc.get("fields", {}), gate)
            if not lacks:
                return []
            if best is None or len(lacks) < len(best):
                best = lacks
        return [f"{name}缺少：{'、'.join(best or [])}"]
    quotes = opp.get("quotes", [])
    if not quotes:
        return []
    latest = quotes[-1]
    limit = gate.quote_over or Decimal(0)
    amount = money(latest["amount"])
    if amount <= limit:
        return []
    role = gate.approver_role or "director"
    decision = opp.get("approvals", {}).get(latest["quote_id"], {}).get(role)
    who = APPROVER_ZH[role]
    if decision == "approved":
        return []
    if decision == "rejected":
        return [f"报价 {yuan(amount)} 超过 {yuan(limit)}，{who}审批已驳回"]
    return [f"报价 {yuan(amount)} 超过 {yuan(limit)}，需先经{who}审批"]


def _lacking(fields: dict[str, Any], gate: Gate) -> list[str]:
    out = []
    for f in gate.required_fields:
        if f == "budget_range" and (fields.get("budget_min") is None or fields.get("budget_max") is None):
            out.append(FIELD_ZH[f])
        elif f == "decision_roles":
            roles = set(fields.get("decision_roles") or [])
            if len(roles) < gate.min_decision_roles:
                out.append(
                    f"{FIELD_ZH[f]}（至少 {gate.min_decision_roles} 个，现有 {len(roles)} 个"
                    + (f"：{'、'.join(ROLE_ZH[r] for r in sorted(roles))}" if roles else "")
                    + "）"
                )
        elif f == "po_number" and not fields.get("po_number"):
            out.append(FIELD_ZH[f])
    return out
