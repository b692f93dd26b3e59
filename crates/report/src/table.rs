//! A query result as both engines hand it over: named columns, typed cells.

use serde::Serialize;

/// One cell. Engines map their types onto these four (Athena reports every
/// value as text plus a column type; DataFusion hands over Arrow arrays).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

impl Value {
    pub fn as_i64(&self) -> i64 {
        match self {
            Value::Int(v) => *v,
            Value::Float(v) => *v as i64,
            Value::Text(s) => s.parse().unwrap_or(0),
            Value::Null => 0,
        }
    }

    pub fn as_f64(&self) -> f64 {
        match self {
            Value::Int(v) => *v as f64,
            Value::Float(v) => *v,
            Value::Text(s) => s.parse().unwrap_or(0.0),
            Value::Null => 0.0,
        }
    }

    pub fn as_text(&self) -> String {
        match self {
            Value::Int(v) => v.to_string(),
            Value::Float(v) => v.to_string(),
            Value::Text(s) => s.clone(),
            Value::Null => String::new(),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// Rows of cells under column names.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// Index of a column; the report queries and the model are written
    /// together, so a missing column is a bug the tests catch.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Rows as name-addressable records.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        self.rows.iter().map(move |row| Record { table: self, row })
    }
}

/// One row with access by column name.
pub struct Record<'a> {
    table: &'a Table,
    row: &'a [Value],
}

impl Record<'_> {
    pub fn get(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.table
            .column(name)
            .and_then(|i| self.row.get(i))
            .unwrap_or(&NULL)
    }
    pub fn int(&self, name: &str) -> i64 {
        self.get(name).as_i64()
    }
    pub fn float(&self, name: &str) -> f64 {
        self.get(name).as_f64()
    }
    pub fn text(&self, name: &str) -> String {
        self.get(name).as_text()
    }
}
