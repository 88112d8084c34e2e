"""CREATE TABLE and DROP TABLE: from sqlglot trees to catalog definitions.

Names fold to lower case as PostgreSQL folds unquoted identifiers (quoted identifiers
keep their spelling, and the catalog compares names as stored). A DEFAULT is kept as its
SQL text in :class:`~offsetdb.materializers.catalog.Column` and compiled at INSERT time;
it is compiled once here as well so that a bad default fails the CREATE.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from offsetdb import errors
from offsetdb.materializers.catalog import Column, TableDef

from .expressions import Compiler, sql_type_of
from .result import Result
from .runtime import Env
from .scope import Scope
from .select import Planner


@dataclass
class CreateTablePlan:
    """A planned CREATE TABLE."""

    definition: TableDef
    if_not_exists: bool

    def execute(self, env: Env) -> Result:
        """Create the table through the transaction."""
        env.ctx.create_table(self.definition, self.if_not_exists)
        return Result([], [], -1, "CREATE TABLE")


@dataclass
class DropTablePlan:
    """A planned DROP TABLE of one or more tables."""

    names: list[str]
    if_exists: bool

    def execute(self, env: Env) -> Result:
        """Drop each table in turn."""
        for name in self.names:
            env.ctx.drop_table(name, self.if_exists)
        return Result([], [], -1, "DROP TABLE")


def plan_create(planner: Planner, node: exp.Create) -> CreateTablePlan:
    """Build the TableDef of a CREATE TABLE."""
    kind = str(node.args.get("kind") or "").upper()
    if kind != "TABLE":
        raise errors.not_supported(f"CREATE {kind or node.sql()[:30]}")
    if node.args.get("replace"):
        raise errors.not_supported("CREATE OR REPLACE TABLE")
    if node.args.get("expression") is not None:
        raise errors.not_supported("CREATE TABLE ... AS")
    props = node.args.get("properties")
    if props is not None and props.expressions:
        raise errors.not_supported(f"CREATE TABLE option {props.expressions[0].sql()}")
    schema = node.this
    if not isinstance(schema, exp.Schema):
        raise errors.SqlSyntaxError("CREATE TABLE needs a column list")
    table_node = schema.this
    if table_node.args.get("db"):
        raise errors.not_supported("schema-qualified table names")
    name = table_node.name
    columns: list[Column] = []
    primary: tuple[int, ...] | None = None
    unique: list[tuple[int, ...]] = []
    pending_pk: list[list[str]] = []
    pending_unique: list[list[str]] = []
    compiler = Compiler(planner, Scope([]), "DEFAULT expressions")
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef):
            col_name = item.name
            if any(c.name == col_name for c in columns):
                raise errors.DuplicateColumn(f'column "{col_name}" specified more than once')
            kind_node = item.args.get("kind")
            if kind_node is None:
                raise errors.SqlSyntaxError(f'column "{col_name}" needs a type')
            sql_type = sql_type_of(kind_node)
            not_null = False
            default: str | None = None
            for constraint in item.constraints:
                ck = constraint.kind
                if isinstance(ck, exp.PrimaryKeyColumnConstraint):
                    pending_pk.append([col_name])
                    not_null = True
                elif isinstance(ck, exp.NotNullColumnConstraint):
                    if ck.args.get("allow_null"):
                        continue  # an explicit NULL: the default anyway
                    not_null = True
                elif isinstance(ck, exp.DefaultColumnConstraint):
                    default_node = ck.this
                    if default_node.find(exp.Column) is not None:
                        raise errors.not_supported("column references in DEFAULT expressions")
                    compiler.compile(default_node)
                    default = default_node.sql(dialect="postgres")
                elif isinstance(ck, exp.UniqueColumnConstraint):
                    pending_unique.append([col_name])
                else:
                    raise errors.not_supported(f"column constraint {ck.sql(dialect='postgres')}")
            columns.append(Column(col_name, sql_type, not_null, default))
        elif isinstance(item, exp.PrimaryKey):
            pending_pk.append([e.name for e in item.expressions])
        elif isinstance(item, exp.UniqueColumnConstraint):
            target = item.this
            names = [e.name for e in target.expressions] if isinstance(target, exp.Schema) else []
            if not names:
                raise errors.not_supported("UNIQUE without a column list")
            pending_unique.append(names)
        elif isinstance(item, exp.Constraint):
            raise errors.not_supported(f"table constraint {item.sql(dialect='postgres')[:40]}")
        else:
            raise errors.not_supported(f"table element {item.sql(dialect='postgres')[:40]}")
    if not columns:
        raise errors.not_supported("tables without columns")
    names = [c.name for c in columns]

    def positions(key: list[str], what: str) -> tuple[int, ...]:
        out: list[int] = []
        for n in key:
            if n not in names:
                raise errors.UndefinedColumn(f'column "{n}" named in key does not exist')
            if names.index(n) in out:
                raise errors.DuplicateColumn(f'column "{n}" appears twice in {what} constraint')
            out.append(names.index(n))
        return tuple(out)

    if len(pending_pk) > 1:
        raise errors.InvalidTableDefinition(f'multiple primary keys for table "{name}" are not allowed')
    if pending_pk:
        primary = positions(pending_pk[0], "primary key")
        for i in primary:
            c = columns[i]
            columns[i] = Column(c.name, c.type, True, c.default)
    for key in pending_unique:
        cols = positions(key, "unique")
        if cols != primary and cols not in unique:
            unique.append(cols)
    definition = TableDef(
        name=name,
        columns=tuple(columns),
        primary_key=primary or (),
        unique=tuple(unique),
    )
    return CreateTablePlan(definition, bool(node.args.get("exists")))


def plan_drop(planner: Planner, node: exp.Drop) -> DropTablePlan:
    """Plan a DROP TABLE."""
    kind = str(node.args.get("kind") or "").upper()
    if kind != "TABLE":
        raise errors.not_supported(f"DROP {kind}")
    if node.args.get("cascade"):
        raise errors.not_supported("DROP TABLE ... CASCADE")
    tables = node.args.get("tables") or [node.this]
    names = []
    for t in tables:
        if t.args.get("db"):
            raise errors.not_supported("schema-qualified table names")
        names.append(t.name)
    return DropTablePlan(names, bool(node.args.get("exists")))
