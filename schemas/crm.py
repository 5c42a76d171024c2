"""CRM contracts of the B2B book: catalogue, accounts and contacts, opportunities, documents,
quotes, approvals and activities.

Every CRM event but the catalogue's names its account in the envelope (``account_id``): the
account is the key, so an opportunity's documents, quotes and approvals meet its stage
requests in one place and a gate is checked without a lookup elsewhere.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from schemas.base import Id, Money, _Strict

# 线索 -> 方案 -> 报价 -> 合同 -> 回款 -> 回款完成; 输单 from anywhere.
STAGES: tuple[str, ...] = ("lead", "solution", "quote", "contract", "collection", "won")
STAGE_ZH: dict[str, str] = {
    "lead": "线索",
    "solution": "方案",
    "quote": "报价",
    "contract": "合同",
    "collection": "回款",
    "won": "回款完成",
    "lost": "输单",
}
Stage = Literal["lead", "solution", "quote", "contract", "collection", "won", "lost"]

# Who decides a hospital purchase (the decision chain).
ROLE_ZH: dict[str, str] = {
    "department_head": "使用科室主任",
    "lab_user": "科室使用人员",
    "equipment": "设备科",
    "procurement": "采购办",
    "vice_president": "分管副院长",
    "finance": "财务处",
    "it": "信息科",
}
Role = Literal["department_head", "lab_user", "equipment", "procurement", "vice_president", "finance", "it"]

DOC_TYPE_ZH: dict[str, str] = {
    "needs_survey": "需求调研表",
    "po_acceptance": "PO验收单",
    "proposal": "方案书",
    "contract": "合同",
    "other": "其他",
}

CRM_TOPICS: tuple[str, ...] = ("crm.catalogue", "crm.accounts", "crm.opportunities", "crm.documents", "crm.activities")


class ProductLine(_Strict):
    """A product line of the catalogue; key = product_line_id."""

    product_line_id: Id
    name: str = Field(min_length=1, max_length=120)
    category: str = Field(min_length=1, max_length=40)
    registration_no: str = Field(pattern=r"^国械注[准进许]\d{11}$")  # 医疗器械注册证号
    list_price: Money = Field(ge=0)
    launched_on: date | None = None  # a line launched within a year counts as a new product


class Rep(_Strict):
    """A sales rep on the roster; key = rep_id. New reps' first-order cycle starts at started_on."""

    rep_id: Id
    name: str = Field(min_length=1, max_length=32)
    region: str = Field(min_length=1, max_length=16)
    started_on: date


class Account(_Strict):
    """A hospital (or company) account."""

    name: str = Field(min_length=1, max_length=120)
    region: str = Field(min_length=1, max_length=16)
    tier: str = Field(default="", max_length=16)  # e.g. 三级甲等
    owner_rep_id: Id


class Contact(_Strict):
    """A person at the account and their place in the decision chain."""

    contact_id: Id
    name: str = Field(min_length=1, max_length=32)  # as the CRM shows it, e.g. 王主任
    department: str = Field(max_length=40)
    role: Role
    phone: str | None = Field(default=None, pattern=r"^1[3-9]\d{9}$")


class OpportunityCreated(_Strict):
    opportunity_id: Id
    name: str = Field(min_length=1, max_length=200)
    product_line_id: Id
    rep_id: Id
    expected_amount: Money = Field(ge=0)
    budget_deadline: date | None = None  # when the hospital's budget for it lapses


class StageRequest(_Strict):
    """A rep (or the CRM on their behalf) asks to move a deal; answered by a decision event."""

    opportunity_id: Id
    to_stage: Stage
    requested_by: Id
    reason: str = Field(default="", max_length=500)


class OpportunityUpdated(_Strict):
    """A rep's update of a deal: the data-timeliness clock restarts."""

    opportunity_id: Id
    rep_id: Id
    expected_amount: Money | None = Field(default=None, ge=0)
    budget_deadline: date | None = None
    next_step: str = Field(default="", max_length=500)


class DocFields(_Strict):
    """Fields extracted from an uploaded document (OCR or form)."""

    budget_min: Money | None = Field(default=None, ge=0)
    budget_max: Money | None = Field(default=None, ge=0)
    decision_roles: list[Role] = Field(default_factory=list, max_length=20)
    po_number: str | None = Field(default=None, max_length=64)
    accepted_on: date | None = None

    @model_validator(mode="after")
    def _range(self) -> DocFields:
        if self.budget_min is not None and self.budget_max is not None and self.budget_min > self.budget_max:
            raise ValueError(f"budget_min {self.budget_min} > budget_max {self.budget_max}")
        return self


class Document(_Strict):
    document_id: Id
    opportunity_id: Id
    doc_type: Literal["needs_survey", "po_acceptance", "proposal", "contract", "other"]
    title: str = Field(min_length=1, max_length=200)
    uploaded_by: Id
    fields: DocFields = Field(default_factory=DocFields)


class QuoteLine(_Strict):
    product_line_id: Id
    qty: int = Field(ge=1, le=10_000)
    unit_price: Money = Field(ge=0)


class Quote(_Strict):
    quote_id: Id
    opportunity_id: Id
    amount: Money = Field(ge=0)
    lines: list[QuoteLine] = Field(min_length=1, max_length=100)
    competitor: str | None = Field(default=None, max_length=60)  # a competitor's quote on record
    competitor_amount: Money | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _amount_matches_lines(self) -> Quote:
        expected = sum((ln.unit_price * ln.qty for ln in self.lines), Decimal("0"))
        if expected != self.amount:
            raise ValueError(f"amount {self.amount} != sum of lines {expected}")
        if (self.competitor is None) != (self.competitor_amount is None):
            raise ValueError("competitor and competitor_amount come together")
        return self


class Approval(_Strict):
    approval_id: Id
    opportunity_id: Id
    quote_id: Id
    approver_id: Id
    approver_role: Literal["director", "manager", "finance"]
    decision: Literal["approved", "rejected"]
    comment: str = Field(default="", max_length=500)


class Activity(_Strict):
    """A visit, demo or call by the rep."""

    activity_id: Id
    opportunity_id: Id | None = None
    rep_id: Id
    kind: Literal["visit", "demo", "call"]
    contact_id: Id | None = None
    duration_minutes: float = Field(ge=0, le=24 * 60)
    custom_pages_shown: bool = False  # a demo that showed the hospital's own parameter pages
    summary: str = Field(default="", max_length=1000)
    # when the rep entered it in the CRM (occurred_at: when it happened); a day later is a late update
    logged_at: AwareDatetime | None = None


class DocView(_Strict):
    """A contact opened a product document the rep shared (from the content platform)."""

    view_id: Id
    contact_id: Id
    material_id: Id
    title: str = Field(min_length=1, max_length=200)
    product_line_id: Id | None = None
    dwell_seconds: float = Field(ge=0, le=86_400)
    pages_read: int = Field(ge=0, le=10_000)
    pages_total: int = Field(ge=1, le=10_000)

    @model_validator(mode="after")
    def _pages(self) -> DocView:
        if self.pages_read > self.pages_total:
            raise ValueError("pages_read exceeds pages_total")
        return self


# (event_type, version) -> (payload model, topic, needs customer_id, needs store_id)
CRM_PAYLOADS: dict[tuple[str, int], tuple[type[_Strict], str, bool, bool]] = {
    ("crm.product", 1): (ProductLine, "crm.catalogue", False, False),
    ("crm.rep", 1): (Rep, "crm.catalogue", False, False),
    ("crm.account", 1): (Account, "crm.accounts", False, False),
    ("crm.contact", 1): (Contact, "crm.accounts", False, False),
    ("crm.opportunity_created", 1): (OpportunityCreated, "crm.opportunities", False, False),
    ("crm.stage_request", 1): (StageRequest, "crm.opportunities", False, False),
    ("crm.opportunity_updated", 1): (OpportunityUpdated, "crm.opportunities", False, False),
    ("crm.quote", 1): (Quote, "crm.opportunities", False, False),
    ("crm.approval", 1): (Approval, "crm.opportunities", False, False),
    ("crm.document", 1): (Document, "crm.documents", False, False),
    ("crm.activity", 1): (Activity, "crm.activities", False, False),
    ("crm.doc_view", 1): (DocView, "crm.activities", False, False),
}
STATELESS: frozenset[str] = frozenset({"crm.product", "crm.rep"})  # reference data, keyed by its own id
NEEDS_ACCOUNT: frozenset[str] = frozenset(t for (t, _v) in CRM_PAYLOADS if t not in STATELESS)
