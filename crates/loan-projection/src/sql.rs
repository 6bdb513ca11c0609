//! SQL text shared by the groups: one multi-row upsert per table, with the rows passed
//! as one array per column (`UNNEST`), so the statement text is the same for any batch
//! size (prepared once) and a batch is one round trip per table.

use crate::schema::ident;

/// `INSERT INTO schema.table (cols) SELECT * FROM UNNEST($1::t1[], ...) ON CONFLICT (key)
/// DO UPDATE SET every non-key column`. Columns not listed (e.g. `stale`) keep their value.
pub(crate) fn upsert(schema: &str, table: &str, columns: &[(&str, &str)], key: &[&str]) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(index, (_, pg_type))| format!("${}::{pg_type}[]", index + 1))
        .collect();
    let updates: Vec<String> = names
        .iter()
        .filter(|name| !key.contains(name))
        .map(|name| format!("{name} = EXCLUDED.{name}"))
        .collect();
    format!(
        "INSERT INTO {schema}.{table} ({names}) SELECT * FROM UNNEST({arrays}) ON CONFLICT ({key}) DO UPDATE SET {updates}",
        schema = ident(schema),
        table = ident(table),
        names = names.join(", "),
        arrays = arrays.join(", "),
        key = key.join(", "),
        updates = updates.join(", "),
    )
}
