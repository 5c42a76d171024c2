"""The state records the batch loop writes must read back through Faust's restore path."""

from faust.serializers import codecs

from agents.batching import changelog_record
from pipeline.infra.faust_app import create_app
from pipeline.infra.settings import load


def test_a_state_record_decodes_with_the_tables_own_serializers() -> None:
    app = create_app(load({}))
    table = app.Table("customers", default=None, partitions=4)
    state = {"customer_id": "C-1", "seq": 3, "profile": {"segment": "门店会员"}}
    for key in ("C-1", "C-中文-2", "pii.0123456789abcdef"):
        k, v = changelog_record(table, key, state)
        assert codecs.loads(table.key_serializer, k) == key  # a raw key was unreadable: state lost
        assert codecs.loads(table.value_serializer, v) == state
