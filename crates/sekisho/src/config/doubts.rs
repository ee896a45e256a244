//! Configs that are valid but most likely not what their author meant.

use super::{Config, Problem};

/// What a valid config says that its author most likely did not mean. `validate` prints
/// these as warnings, and `run` logs them at every load, reloads included; the file is
/// accepted all the same, as Envoy accepts the same patterns.
///
/// `path_regex` must match the whole path (Envoy's `safe_regex`), so a pattern ending in a
/// literal `/`, such as `^/v[0-9]+/`, matches only paths that end with that slash, although it
/// reads like a prefix. A pattern ending in `/$` says so on purpose and is not flagged.
pub fn doubts(config: &Config) -> Vec<Problem> {
    config
        .routes
        .iter()
        .enumerate()
        .filter_map(|(i, route)| {
            let regex = route.matches.path_regex.as_ref()?;
            // Shown through its Debug form, which is `<redacted>` for a secret reference.
            regex.get().0.as_str().ends_with('/').then(|| {
                Problem::on(
                    &route.name,
                    format!("routes[{i}].match.path_regex"),
                    format!(
                        "a path_regex must match the whole path (as Envoy's safe_regex does), \
                         so {regex:?} matches only paths ending in \"/\"; for a prefix end it \
                         with \".*\" or use path_prefix"
                    ),
                )
            })
        })
        .collect()
}
