//! A segment trie per HTTP method. Matching walks the request path once, preferring a literal
//! segment over `*` and `*` over `**`, and allocates only the list of segment slices.

use std::collections::HashMap;

use http::Method;

use super::parse::{Segment, Template};

/// Where templates end: one without a verb, and one per verb.
#[derive(Debug, Default)]
struct Ends {
    plain: Option<usize>,
    verbs: HashMap<String, usize>,
}

impl Ends {
    fn get(&self, verb: Option<&str>) -> Option<usize> {
        match verb {
            None => self.plain,
            Some(v) => self.verbs.get(v).copied(),
        }
    }

    /// Records `id`, or returns the id already there.
    fn insert(&mut self, verb: Option<&str>, id: usize) -> Result<(), usize> {
        let slot = match verb {
            None => &mut self.plain,
            Some(v) => {
                if let Some(existing) = self.verbs.get(v) {
                    return Err(*existing);
                }
                self.verbs.insert(v.to_owned(), id);
                return Ok(());
            }
        };
        match slot {
            Some(existing) => Err(*existing),
            None => {
                *slot = Some(id);
                Ok(())
            }
        }
    }
}

#[derive(Debug, Default)]
struct Node {
    literals: HashMap<String, Node>,
    single: Option<Box<Node>>,
    /// Templates ending in `**` after this node's segments.
    multi: Ends,
    /// Templates ending exactly here.
    ends: Ends,
}

impl Node {
    fn find(&self, segments: &[&str], verb: Option<&str>) -> Option<usize> {
        if let Some((first, rest)) = segments.split_first() {
            if let Some(id) = self.literals.get(*first).and_then(|c| c.find(rest, verb)) {
                return Some(id);
            }
            if !first.is_empty()
                && let Some(id) = self.single.as_ref().and_then(|c| c.find(rest, verb))
            {
                return Some(id);
            }
        } else if let Some(id) = self.ends.get(verb) {
            return Some(id);
        }
        self.multi.get(verb)
    }
}

/// The compiled templates of all rules, keyed by the caller's ids.
#[derive(Debug, Default)]
pub(crate) struct Router {
    methods: Vec<(Method, Node)>,
}

/// A successful match: the rule id and the request path split into raw segments (the verb, if
/// any, already cut from the last one).
#[derive(Debug)]
pub(crate) struct PathMatch<'a> {
    pub id: usize,
    pub segments: Vec<&'a str>,
}

impl Router {
    /// Adds a template; on a clash returns the id of the rule it cannot be told apart from.
    pub fn insert(&mut self, method: &Method, template: &Template, id: usize) -> Result<(), usize> {
        let index = match self.methods.iter().position(|(m, _)| m == method) {
            Some(i) => i,
            None => {
                self.methods.push((method.clone(), Node::default()));
                self.methods.len() - 1
            }
        };
        let mut node = &mut self.methods[index].1;
        let verb = template.verb.as_deref();
        for segment in &template.segments {
            node = match segment {
                Segment::Literal(text) => node.literals.entry(text.clone()).or_default(),
                Segment::Single => node.single.get_or_insert_with(Box::default),
                Segment::Multi => return node.multi.insert(verb, id),
            };
        }
        node.ends.insert(verb, id)
    }

    /// Finds the rule for a request path (without the query).
    pub fn find<'a>(&self, method: &Method, path: &'a str) -> Option<PathMatch<'a>> {
        let (_, root) = self.methods.iter().find(|(m, _)| m == method)?;
        let rest = path.strip_prefix('/')?;
        let mut segments: Vec<&'a str> = rest.split('/').collect();
        let last = segments.len() - 1;
        if let Some((head, verb)) = segments[last].rsplit_once(':') {
            let full = segments[last];
            segments[last] = head;
            if let Some(id) = root.find(&segments, Some(verb)) {
                return Some(PathMatch { id, segments });
            }
            segments[last] = full;
        }
        let id = root.find(&segments, None)?;
        Some(PathMatch { id, segments })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(templates: &[(&str, &str)]) -> Router {
        let mut router = Router::default();
        for (id, (method, text)) in templates.iter().enumerate() {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            router
                .insert(&method, &Template::parse(text).unwrap(), id)
                .unwrap();
        }
        router
    }

    #[test]
    fn literals_win_over_wildcards_and_verbs_are_split_off() {
        let r = router(&[
            ("GET", "/v1/shelves/{shelf}"),
            ("GET", "/v1/shelves/special"),
            ("GET", "/v1/shelves/{shelf}:watch"),
            ("GET", "/v1/{path=**}"),
        ]);
        let get = Method::GET;
        assert_eq!(r.find(&get, "/v1/shelves/7").unwrap().id, 0);
        assert_eq!(r.find(&get, "/v1/shelves/special").unwrap().id, 1);
        let watch = r.find(&get, "/v1/shelves/7:watch").unwrap();
        assert_eq!((watch.id, watch.segments[2]), (2, "7"));
        // An unknown verb is part of the segment, as a literal colon.
        assert_eq!(r.find(&get, "/v1/shelves/7:other").unwrap().id, 0);
        assert_eq!(r.find(&get, "/v1/a/b/c").unwrap().id, 3);
        // `**` matches zero segments too.
        assert_eq!(r.find(&get, "/v1").unwrap().id, 3);
        assert!(r.find(&get, "/v2").is_none());
        assert_eq!(r.find(&get, "/v1/").unwrap().id, 3);
        assert!(r.find(&Method::POST, "/v1/shelves/7").is_none());
    }

    #[test]
    fn backtracks_when_a_literal_branch_dead_ends() {
        let r = router(&[("GET", "/v1/a/x"), ("GET", "/v1/{p}/y")]);
        assert_eq!(r.find(&Method::GET, "/v1/a/y").unwrap().id, 1);
    }

    /// Whether one template matches a path, checked the slow obvious way.
    fn matches(template: &Template, segments: &[&str], verb: Option<&str>) -> bool {
        if template.verb.as_deref() != verb {
            return false;
        }
        let mut rest = segments;
        for segment in &template.segments {
            match segment {
                Segment::Multi => return true,
                Segment::Literal(text) => match rest.split_first() {
                    Some((first, tail)) if first == text => rest = tail,
                    _ => return false,
                },
                Segment::Single => match rest.split_first() {
                    Some((first, tail)) if !first.is_empty() => rest = tail,
                    _ => return false,
                },
            }
        }
        rest.is_empty()
    }

    #[test]
    fn finds_a_template_exactly_when_one_matches() {
        // Random templates and paths over a tiny alphabet, so that overlaps are frequent.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let mut router = Router::default();
            let mut templates = Vec::new();
            for _ in 0..6 {
                let len = 1 + next(3);
                let mut text = String::new();
                for i in 0..len {
                    text.push('/');
                    text.push_str(match next(4) {
                        0 => "a",
                        1 => "b",
                        2 => "*",
                        _ if i + 1 == len => "**",
                        _ => "*",
                    });
                }
                if next(3) == 0 {
                    text.push_str(":v");
                }
                let template = Template::parse(&text).unwrap();
                if router
                    .insert(&Method::GET, &template, templates.len())
                    .is_ok()
                {
                    templates.push(template);
                }
            }
            for _ in 0..20 {
                let len = next(5);
                let mut path = String::new();
                for _ in 0..len {
                    path.push('/');
                    path.push_str(["a", "b", "c", ""][next(4) as usize]);
                }
                if path.is_empty() {
                    path.push('/');
                }
                if next(3) == 0 {
                    path.push_str(":v");
                }
                let found = router.find(&Method::GET, &path);
                let segments: Vec<&str> = path[1..].split('/').collect();
                let (head, verb) = match segments.last().and_then(|s| s.rsplit_once(':')) {
                    Some((head, verb)) => {
                        let mut cut = segments.clone();
                        let last = cut.len() - 1;
                        cut[last] = head;
                        (Some(cut), Some(verb))
                    }
                    None => (None, None),
                };
                let any = templates.iter().any(|t| {
                    matches(t, &segments, None)
                        || head.as_ref().is_some_and(|h| matches(t, h, verb))
                });
                match found {
                    Some(m) => {
                        let t = &templates[m.id];
                        assert!(
                            matches(t, &m.segments, t.verb.as_deref()),
                            "{path} does not match the template found"
                        );
                    }
                    None => assert!(!any, "{path} matches a template but none was found"),
                }
            }
        }
    }

    #[test]
    fn identical_shapes_clash() {
        let mut r = Router::default();
        let a = Template::parse("/v1/{name=shelves/*}").unwrap();
        let b = Template::parse("/v1/shelves/{id}").unwrap();
        r.insert(&Method::GET, &a, 0).unwrap();
        assert_eq!(r.insert(&Method::GET, &b, 1), Err(0));
        assert_eq!(r.insert(&Method::POST, &b, 2), Ok(()));
    }
}
