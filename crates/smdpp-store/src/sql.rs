//! A tiny builder for runtime SQL with numbered (`$n`) placeholders, which
//! both SQLite and PostgreSQL accept through the `Any` driver.

use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments, AssertSqlSafe, Encode, Type};

use crate::StoreError;

/// SQL text plus its bound arguments. Only constant fragments are ever
/// appended as text; every caller-supplied value goes through [`Sql::bind`].
pub(crate) struct Sql {
    text: String,
    args: AnyArguments,
    count: usize,
    error: Option<String>,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Sql {
            text: text.to_string(),
            args: AnyArguments::default(),
            count: 0,
            error: None,
        }
    }

    /// Appends a constant SQL fragment.
    pub(crate) fn push(&mut self, fragment: &str) -> &mut Self {
        self.text.push_str(fragment);
        self
    }

    /// Binds a value and returns its placeholder (`$n`) without appending it.
    pub(crate) fn arg<'t, T>(&mut self, value: T) -> String
    where
        T: Encode<'t, Any> + Type<Any>,
    {
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert_with(|| e.to_string());
        }
        self.count += 1;
        format!("${}", self.count)
    }

    /// Binds a value and appends its placeholder.
    pub(crate) fn bind<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'t, Any> + Type<Any>,
    {
        let p = self.arg(value);
        self.text.push_str(&p);
        self
    }

    /// Finishes the query.
    pub(crate) fn build(
        self,
    ) -> Result<sqlx::query::Query<'static, Any, AnyArguments>, StoreError> {
        if let Some(e) = self.error {
            return Err(StoreError::Database(format!("cannot encode argument: {e}")));
        }
        Ok(sqlx::query_with(AssertSqlSafe(self.text), self.args))
    }

    /// Runs the query on `pool` (a pool or a connection) and maps every row it returns.
    pub(crate) async fn fetch_all<'e, T>(
        self,
        pool: impl sqlx::Executor<'e, Database = Any>,
        map: impl FnMut(&sqlx::any::AnyRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.build()?
            .fetch_all(pool)
            .await?
            .iter()
            .map(map)
            .collect()
    }

    /// Runs the query on `pool` (a pool or a connection) and maps the one row it may return.
    pub(crate) async fn fetch_optional<'e, T>(
        self,
        pool: impl sqlx::Executor<'e, Database = Any>,
        map: impl FnOnce(&sqlx::any::AnyRow) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.build()?
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(map)
            .transpose()
    }
}
