//! Every problem at once: a table is read again without each value that
//! did not read, so one run reports all of them, each once.

use figment::Figment;
use figment::error::Kind;
use figment::value::{Dict, Value};

use super::origin::Layer;
use crate::error::Error;
use crate::settings::is_index;

/// The problems found so far, one per key: a problem is left out when one
/// already reported concerns the same key, or a table holding it or held by
/// it (a value of the wrong type, replaced by its default, must not be
/// reported again by the checks that then see the default).
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<Error>);

impl Problems {
    pub(super) fn add(&mut self, problem: Error) {
        let key = problem.config_key().unwrap_or("");
        if !self.0.iter().any(|p| keys_overlap(p.config_key().unwrap_or(""), key)) {
            self.0.push(problem);
        }
    }
}

/// Whether `a` and `b` are the same key, or one holds the other
/// (`tls` and `tls.cert_path`, `keys` and `keys[0].kid`). The empty key (a
/// problem with the file itself) overlaps only itself.
fn keys_overlap(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long.strip_prefix(short).is_some_and(|rest| {
        rest.is_empty() || (!short.is_empty() && (rest.starts_with('.') || rest.starts_with('[')))
    })
}

/// The most problems reported for one table.
const MAX_PROBLEMS_PER_TABLE: usize = 32;

/// Every problem in one table, not only the first one serde stops at: each
/// problem's key is taken out and the table read again, until it reads or
/// a problem has no key to take out (a missing one). Returns the problems,
/// and the table read without the keys taken out, when it then reads.
pub(super) fn every_error<T: serde::de::DeserializeOwned>(
    table: &Figment,
) -> (Vec<figment::Error>, Option<T>) {
    let mut dict = match table.extract::<Dict>() {
        Ok(dict) => dict,
        Err(err) => return (err.into_iter().collect(), None),
    };
    let mut errors: Vec<figment::Error> = Vec::new();
    let mut removed: Vec<Vec<String>> = Vec::new();
    while errors.len() < MAX_PROBLEMS_PER_TABLE {
        let attempt = Figment::from(Layer::file(dict.clone()));
        let found = match attempt.extract_lossy::<T>() {
            Ok(value) => return (errors, Some(value)),
            Err(found) => found,
        };
        let mut progress = false;
        for err in found {
            let mut path = err.path.clone();
            match &err.kind {
                Kind::UnknownField(name, _) if path.last() != Some(name) => path.push(name.clone()),
                // Taken out by an earlier round: not the user's doing. The
                // table that now misses it goes too, so the rest still reads.
                Kind::MissingField(name)
                    if removed
                        .iter()
                        .any(|r| r.split_last() == Some((&name.to_string(), &path))) =>
                {
                    if remove_at(&mut dict, &path) {
                        removed.push(path);
                        progress = true;
                    }
                    continue;
                }
                _ => {}
            }
            // An array item's problem takes out the whole array, so the
            // indices of later problems stay those of the file.
            while path.last().is_some_and(|segment| is_index(segment)) {
                path.pop();
            }
            if !matches!(err.kind, Kind::MissingField(_)) && remove_at(&mut dict, &path) {
                removed.push(path);
                progress = true;
            }
            errors.push(err);
        }
        if !progress {
            break;
        }
    }
    (errors, None)
}

/// Takes the value at `path` out of `dict`; false if there is none.
fn remove_at(dict: &mut Dict, path: &[String]) -> bool {
    match path {
        [] => false,
        [last] => dict.remove(last).is_some(),
        [first, rest @ ..] => dict.get_mut(first).is_some_and(|value| remove_in(value, rest)),
    }
}

/// [`remove_at`] below a table or an array item.
fn remove_in(value: &mut Value, path: &[String]) -> bool {
    match value {
        Value::Dict(_, dict) => remove_at(dict, path),
        Value::Array(_, items) => path.split_first().is_some_and(|(index, rest)| {
            let item = index.parse::<usize>().ok().and_then(|i| items.get_mut(i));
            item.is_some_and(|item| remove_in(item, rest))
        }),
        _ => false,
    }
}
