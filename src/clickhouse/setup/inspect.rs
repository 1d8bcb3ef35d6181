//! What the server has of encore's schema.

use super::{rows, text};
use crate::clickhouse::schema::{Dialect, Live, Object, Target, drift, plan};
use crate::clickhouse::{ChError, ClickHouse, Version, quote_ident, quote_str};

/// The server, its dialect and what it holds of encore's schema.
pub struct Inspection {
    pub version: Version,
    pub dialect: Dialect,
    pub objects: Vec<(Object, Option<Live>)>,
}

impl Inspection {
    /// Every difference, prefixed with the object's name.
    pub fn drift(&self) -> Vec<String> {
        self.objects
            .iter()
            .filter_map(|(o, live)| live.as_ref().map(|l| (o, drift(o, l))))
            .flat_map(|(o, d)| d.into_iter().map(move |l| format!("{}: {l}", o.name)))
            .collect()
    }
}

/// Reads the server's version and what it has of the schema.
pub async fn inspect(ch: &ClickHouse, target: &Target) -> Result<Inspection, ChError> {
    let version = ch.version().await?;
    let dialect = Dialect::for_version(version);
    let expected = plan(target, dialect)?;
    let tables = rows(
        &ch.query(&format!(
            "SELECT name, engine, engine_full, sorting_key, partition_key, create_table_query \
             FROM system.tables \
             WHERE database = {} FORMAT JSONEachRow",
            quote_str(&target.database)
        ))
        .await?,
    )?;
    let db = quote_ident(&target.database)?;
    let mut objects = Vec::with_capacity(expected.len());
    for o in expected {
        let live = match tables.iter().find(|t| text(t, "name") == o.name) {
            None => None,
            Some(t) => {
                let mut live = Live {
                    engine: text(t, "engine"),
                    engine_full: text(t, "engine_full"),
                    sorting_key: text(t, "sorting_key"),
                    partition_key: text(t, "partition_key"),
                    create_query: text(t, "create_table_query"),
                    columns: vec![],
                };
                if !o.columns.is_empty() {
                    let described = ch
                        .query(&format!(
                            "DESCRIBE TABLE {db}.{} FORMAT JSONEachRow",
                            quote_ident(&o.name)?
                        ))
                        .await?;
                    live.columns = rows(&described)?
                        .iter()
                        .map(|c| (text(c, "name"), text(c, "type")))
                        .collect();
                }
                Some(live)
            }
        };
        objects.push((o, live));
    }
    Ok(Inspection {
        version,
        dialect,
        objects,
    })
}
