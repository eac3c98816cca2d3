//! The spool's tables and their Arrow schemas: the on-disk contract of DESIGN §3.
//!
//! Column names are snake_case and stable; a change of a name or type bumps
//! [`SPOOL_FORMAT_VERSION`]. Every table's first column is its time (the sort key of each row
//! group and the source of its `date=/hour=` partition).
//!
//! Type choices, for the readers people actually use (DuckDB, pyarrow/pandas, R's arrow, Spark):
//! - times are `TIMESTAMP(MICROS, "UTC")`;
//! - durations are nullable `INT32` milliseconds (HAProxy's `-1` is null);
//! - `status` is nullable `INT16`: HTTP codes are three digits, and every reader maps a signed
//!   16-bit integer to its plain integer type;
//! - ports, connection counters and queues are `INT32`, not `UINT16`/`UINT32`: R's arrow turns
//!   `uint32` into doubles and Spark reads unsigned Parquet types poorly, while the Parquet
//!   physical type (and so the file size) is the same `INT32` either way;
//! - byte counts are `INT64`;
//! - strings are plain `Utf8` in Arrow; the Parquet writer dictionary-encodes them (a writer
//!   property, see [`crate::writer`]), so low-cardinality columns cost a few bits a row while
//!   readers see ordinary strings.

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// The version of the spool layout and of every table schema below. Written to `<spool>/FORMAT`
/// and to each file's key-value metadata (`weir.spool_format`).
///
/// 2: `requests` and `tcp` gained `fields` (map<string,string>): the values of a custom
/// `log-format` without a column of their own.
///
/// 3: `app` gained the `router_*` columns of Heroku router lines. The `metrics` table (l2met
/// metrics of app lines) came later within version 3: a new folder, no existing column changed,
/// so spools and readers of version 3 stay compatible both ways.
pub const SPOOL_FORMAT_VERSION: u32 = 3;

pub use weir_model::Table;

/// The Arrow schema of each [`Table`] (the tables themselves, and which records go where, are
/// `weir-model`'s).
pub trait TableSchema {
    /// The Arrow schema of this table.
    fn schema(self) -> SchemaRef;
}

impl TableSchema for Table {
    fn schema(self) -> SchemaRef {
        match self {
            Table::Requests => REQUESTS.clone(),
            Table::Tcp => TCP.clone(),
            Table::App => APP.clone(),
            Table::Rejects => REJECTS.clone(),
            Table::Metrics => METRICS.clone(),
        }
    }
}

/// The time type of every timestamp column.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn ts(name: &str, nullable: bool) -> Field {
    Field::new(name, timestamp_type(), nullable)
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn i32f(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int32, nullable)
}

fn boolean(name: &str) -> Field {
    Field::new(name, DataType::Boolean, false)
}

/// `list<string>`, with arrow-rs's default item field (`item`, nullable) so that
/// `ListBuilder<StringBuilder>` output matches it.
fn string_list(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        true,
    )
}

/// `map<string,string>` with the field names `MapBuilder` uses by default.
fn string_map(name: &str) -> Field {
    map_field(name, DataType::Utf8, DataType::Utf8)
}

/// `map<key,value>` with the field names `MapBuilder` uses by default.
pub(crate) fn map_field(name: &str, key: DataType, value: DataType) -> Field {
    let entries = Fields::from(vec![
        Field::new("key", key, false),
        Field::new("value", value, true),
    ]);
    Field::new(
        name,
        DataType::Map(
            Arc::new(Field::new("entries", DataType::Struct(entries), false)),
            false,
        ),
        true,
    )
}

/// The connection fields shared by `requests` and `tcp`, from `ts` to `server`.
fn connection_head() -> Vec<Field> {
    vec![
        ts("ts", false),
        ts("received_at", true),
        utf8("host", true),
        utf8("process", true),
        utf8("pid", true),
        utf8("client_ip", false),
        i32f("client_port", true),
        utf8("frontend", false),
        boolean("ssl"),
        utf8("backend", false),
        utf8("server", false),
    ]
}

/// The counters shared by `requests` and `tcp`, from `actconn` to `backend_queue`.
fn connection_counters() -> Vec<Field> {
    vec![
        i32f("actconn", false),
        i32f("feconn", false),
        i32f("beconn", false),
        i32f("srv_conn", false),
        i32f("retries", false),
        boolean("redispatched"),
        i32f("srv_queue", false),
        i32f("backend_queue", false),
    ]
}

static REQUESTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut f = connection_head();
    f.extend([
        i32f("request_ms", true),
        i32f("queue_ms", true),
        i32f("connect_ms", true),
        i32f("response_ms", true),
        i32f("total_ms", true),
        boolean("total_logasap"),
        Field::new("status", DataType::Int16, true),
        Field::new("bytes_read", DataType::Int64, false),
        boolean("bytes_logasap"),
        utf8("req_cookie", true),
        utf8("resp_cookie", true),
        utf8("termination_state", false),
    ]);
    f.extend(connection_counters());
    f.extend([
        string_list("req_headers"),
        string_list("resp_headers"),
        utf8("method", true),
        utf8("path", true),
        utf8("query", true),
        utf8("http_version", true),
        boolean("request_bad"),
        utf8("request_raw", true),
        utf8("ssl_version", true),
        utf8("ssl_cipher", true),
        utf8("ssl_sni", true),
        utf8("ssl_fc_err", true),
        i32f("fc_err", true),
        i32f("ssl_c_err", true),
        i32f("ssl_c_ca_err", true),
        Field::new("ssl_resumed", DataType::Boolean, true),
        boolean("truncated"),
        boolean("clf"),
        string_map("fields"),
    ]);
    Arc::new(Schema::new(f))
});

static TCP: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut f = connection_head();
    f.extend([
        i32f("queue_ms", true),
        i32f("connect_ms", true),
        i32f("total_ms", true),
        boolean("total_logasap"),
        Field::new("bytes_read", DataType::Int64, false),
        boolean("bytes_logasap"),
        utf8("termination_state", false),
    ]);
    f.extend(connection_counters());
    f.push(string_map("fields"));
    Arc::new(Schema::new(f))
});

static APP: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        ts("ts", true),
        ts("received_at", true),
        utf8("host", true),
        utf8("app", true),
        utf8("proc", true),
        Field::new("severity", DataType::Int8, true),
        Field::new("facility", DataType::Int8, true),
        utf8("kind", false),
        utf8("message", false),
        string_map("fields"),
        utf8("router_code", true),
        utf8("router_method", true),
        utf8("router_path", true),
        utf8("router_host", true),
        Field::new("router_status", DataType::Int16, true),
        Field::new("router_connect_ms", DataType::Int32, true),
        Field::new("router_service_ms", DataType::Int32, true),
        Field::new("router_bytes", DataType::Int64, true),
        utf8("router_dyno", true),
        utf8("router_request_id", true),
        utf8("router_fwd", true),
        utf8("router_protocol", true),
    ]))
});

static REJECTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        ts("received_at", false),
        utf8("peer", true),
        utf8("source", true),
        utf8("reason", false),
        Field::new("raw", DataType::Binary, false),
    ]))
});

/// One row per l2met metric of an app line: `ts` is the line's time (or when it was received),
/// `value` and `unit` as written (`12.5`, `ms`; the unit is empty when none was written).
static METRICS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        ts("ts", false),
        ts("received_at", true),
        utf8("host", true),
        utf8("app", true),
        utf8("proc", true),
        utf8("source", true),
        utf8("kind", false),
        utf8("name", false),
        Field::new("value", DataType::Float64, false),
        utf8("unit", false),
    ]))
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_column_is_time() {
        for t in Table::ALL {
            assert_eq!(t.schema().field(0).data_type(), &timestamp_type());
        }
    }

    /// Whether `t` is or holds an unsigned integer.
    fn has_unsigned(t: &DataType) -> bool {
        match t {
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => true,
            DataType::List(f) | DataType::LargeList(f) | DataType::Map(f, _) => has_unsigned(f.data_type()),
            DataType::Struct(fields) => fields.iter().any(|f| has_unsigned(f.data_type())),
            _ => false,
        }
    }

    /// R's arrow reads `uint32` as a double and `uint64` as a double or an error, and Spark has
    /// no unsigned types: every table, `windows` included, uses signed integers only.
    #[test]
    fn no_column_is_unsigned() {
        let schemas = Table::ALL
            .iter()
            .map(|t| (t.name(), t.schema()))
            .chain([(crate::windows::WINDOWS, crate::windows::schema())]);
        for (name, schema) in schemas {
            for f in schema.fields() {
                assert!(
                    !has_unsigned(f.data_type()),
                    "{name}.{}: {}",
                    f.name(),
                    f.data_type()
                );
            }
        }
        assert!(has_unsigned(&DataType::List(Arc::new(Field::new(
            "item",
            DataType::UInt64,
            true
        )))));
    }

    #[test]
    fn column_names_are_unique_snake_case() {
        for t in Table::ALL {
            let s = t.schema();
            let mut names: Vec<&str> = s.fields().iter().map(|f| f.name().as_str()).collect();
            for n in &names {
                assert!(
                    n.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                    "{t}.{n}"
                );
            }
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), s.fields().len(), "{t} has duplicate columns");
        }
    }
}
