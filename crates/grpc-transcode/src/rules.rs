//! Turning `google.api.http` options into checked bindings: every field a rule names must exist
//! with a usable type, and no two rules may match the same requests. All of this is decided at
//! load time so that a bad descriptor set never reaches traffic.

use std::sync::Arc;

use http::Method;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
};

use crate::LoadError;
use crate::descriptors::http_rule;
use crate::template::{Router, Template};

/// Where the request body goes.
#[derive(Debug, Clone)]
pub(crate) enum BodyRule {
    /// No body: every field not in the path comes from the query.
    None,
    /// `body: "*"`: the body is the whole request message (minus path fields).
    Whole,
    /// `body: "field"`: the body is that top-level field.
    Field(FieldDescriptor),
}

/// Where raw body bytes go when the body binding is a `google.api.HttpBody`.
#[derive(Debug, Clone)]
pub(crate) enum RawBody {
    /// The request message is the `HttpBody`.
    Request,
    /// A top-level field of this `HttpBody` type.
    Field(FieldDescriptor, MessageDescriptor),
}

const HTTP_BODY: &str = "google.api.HttpBody";

impl RawBody {
    fn of(input: &MessageDescriptor, body: &BodyRule) -> Option<RawBody> {
        match body {
            BodyRule::Whole if input.full_name() == HTTP_BODY => Some(RawBody::Request),
            BodyRule::Field(field) if !field.is_list() => match field.kind() {
                Kind::Message(m) if m.full_name() == HTTP_BODY => {
                    Some(RawBody::Field(field.clone(), m))
                }
                _ => None,
            },
            _ => None,
        }
    }
}

/// A path variable resolved to the fields it sets.
#[derive(Debug, Clone)]
pub(crate) struct BoundVariable {
    pub fields: Vec<FieldDescriptor>,
    pub start: usize,
    pub end: Option<usize>,
    pub single_segment: bool,
}

/// One HTTP binding of one gRPC method (a rule or one of its additional bindings).
#[derive(Debug)]
pub(crate) struct Binding {
    pub method: MethodDescriptor,
    pub grpc_path: String,
    pub http_method: Method,
    /// The template as written, for errors and the OpenAPI document.
    pub pattern: String,
    pub template: Template,
    pub variables: Vec<BoundVariable>,
    pub body: BodyRule,
    /// Set when the body is taken as raw bytes (derived from `body` at load time).
    pub raw_body: Option<RawBody>,
    pub response_body: Option<FieldDescriptor>,
    /// Set when the response (or its `response_body` field) is an `HttpBody` sent as raw bytes.
    pub raw_response: bool,
}

impl Binding {
    pub fn describe(&self) -> String {
        format!("{} {}", self.http_method, self.pattern)
    }
}

/// All bindings of the selected services, and the router that finds them.
pub(crate) struct Rules {
    pub bindings: Vec<Arc<Binding>>,
    pub router: Router,
}

/// Loads the rules of `services` (all when `None`), keeping only `methods` when given
/// (`package.Service/Method`, as the gRPC path names them); a listed method that is not
/// there, or has no rule, is an error.
pub(crate) fn load(
    pool: &DescriptorPool,
    services: Option<&[String]>,
    methods: Option<&[String]>,
) -> Result<Rules, LoadError> {
    let selected = match services {
        Some(names) => names
            .iter()
            .map(|name| {
                pool.get_service_by_name(name).ok_or_else(|| {
                    LoadError::new(format!("the service `{name}` is not in the descriptor set"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => pool.services().collect(),
    };
    let mut rules = Rules {
        bindings: Vec::new(),
        router: Router::default(),
    };
    let mut bound = Vec::new();
    for service in &selected {
        let before = rules.bindings.len();
        for method in service.methods() {
            let path = format!("{}/{}", service.full_name(), method.name());
            if methods.is_some_and(|allowed| !allowed.contains(&path)) {
                continue;
            }
            let Some(rule) = http_rule(pool, &method) else {
                continue;
            };
            add_rule(&mut rules, &method, &rule, true)?;
            bound.push(path);
        }
        if services.is_some() && methods.is_none() && rules.bindings.len() == before {
            return Err(LoadError::new(format!(
                "the service `{}` has no method with a google.api.http rule",
                service.full_name()
            ))
            .in_file(service.parent_file().name()));
        }
    }
    if let Some(missing) = methods
        .into_iter()
        .flatten()
        .find(|method| !bound.contains(method))
    {
        return Err(LoadError::new(format!(
            "the method `{missing}` is not a method with a google.api.http rule of the \
             exposed services (write it `package.Service/Method`)"
        )));
    }
    if rules.bindings.is_empty() {
        return Err(LoadError::new(
            "no method has a google.api.http rule (was the set built with its imports, \
             including google/api/annotations.proto?)",
        ));
    }
    Ok(rules)
}

fn add_rule(
    rules: &mut Rules,
    method: &MethodDescriptor,
    rule: &DynamicMessage,
    top_level: bool,
) -> Result<(), LoadError> {
    let fail = |problem: String, pattern: &str| {
        LoadError::new(problem)
            .in_file(method.parent_file().name())
            .in_method(method.full_name())
            .in_rule(pattern)
    };
    let (http_method, pattern) = pattern(rule).ok_or_else(|| {
        fail(
            "the rule has no pattern (get, put, post, delete, patch or custom)".into(),
            "",
        )
    })?;
    let described = format!("{http_method} {pattern}");
    let template = Template::parse(&pattern).map_err(|e| fail(e.0, &described))?;
    let input = method.input();
    let variables = template
        .variables
        .iter()
        .map(|v| {
            let fields =
                resolve_variable(&input, &v.field_path).map_err(|p| fail(p, &described))?;
            Ok(BoundVariable {
                fields,
                start: v.start,
                end: v.end,
                single_segment: v.is_single_segment(),
            })
        })
        .collect::<Result<Vec<_>, LoadError>>()?;
    let body = match string_field(rule, "body").as_str() {
        "" => BodyRule::None,
        "*" => BodyRule::Whole,
        name => {
            BodyRule::Field(top_level_field(&input, name, "body").map_err(|p| fail(p, &described))?)
        }
    };
    let response_body = match string_field(rule, "response_body").as_str() {
        "" => None,
        name => Some(
            top_level_field(&method.output(), name, "response_body")
                .map_err(|p| fail(p, &described))?,
        ),
    };
    let id = rules.bindings.len();
    rules
        .router
        .insert(&http_method, &template, id)
        .map_err(|other| {
            let other = &rules.bindings[other];
            fail(
                format!(
                    "it matches the same requests as `{}` of `{}`",
                    other.describe(),
                    other.method.full_name()
                ),
                &described,
            )
        })?;
    rules.bindings.push(Arc::new(Binding {
        method: method.clone(),
        grpc_path: format!("/{}/{}", method.parent_service().full_name(), method.name()),
        http_method,
        pattern,
        template,
        variables,
        raw_body: RawBody::of(&input, &body),
        body,
        raw_response: match &response_body {
            Some(field) => {
                matches!(field.kind(), Kind::Message(m) if m.full_name() == HTTP_BODY)
                    && !field.is_list()
            }
            None => method.output().full_name() == HTTP_BODY,
        },
        response_body,
    }));
    if let Some(extra) = rule.get_field_by_name("additional_bindings")
        && let Some(list) = extra.as_list()
    {
        for binding in list {
            let Some(binding) = binding.as_message() else {
                continue;
            };
            if !top_level {
                return Err(fail(
                    "additional_bindings cannot be nested".into(),
                    &described,
                ));
            }
            add_rule(rules, method, binding, false)?;
        }
    }
    Ok(())
}

fn string_field(message: &DynamicMessage, name: &str) -> String {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn pattern(rule: &DynamicMessage) -> Option<(Method, String)> {
    let simple = [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ];
    for (name, method) in simple {
        if rule.has_field_by_name(name) {
            return Some((method, string_field(rule, name)));
        }
    }
    if rule.has_field_by_name("custom") {
        let custom = rule.get_field_by_name("custom")?;
        let custom = custom.as_message()?;
        let kind = string_field(custom, "kind");
        let method = Method::from_bytes(kind.as_bytes()).ok()?;
        return Some((method, string_field(custom, "path")));
    }
    None
}

fn resolve_variable(
    input: &MessageDescriptor,
    path: &[String],
) -> Result<Vec<FieldDescriptor>, String> {
    let dotted = path.join(".");
    let mut message = input.clone();
    let mut fields = Vec::with_capacity(path.len());
    for (i, name) in path.iter().enumerate() {
        let field = message.get_field_by_name(name).ok_or_else(|| {
            format!(
                "the path variable `{dotted}` names no field: `{}` has no field `{name}`",
                message.full_name()
            )
        })?;
        if field.is_list() || field.is_map() {
            return Err(format!(
                "the path variable `{dotted}` names a repeated field `{name}`"
            ));
        }
        let last = i + 1 == path.len();
        match field.kind() {
            Kind::Message(next) if !last => message = next,
            Kind::Message(_) => {
                return Err(format!(
                    "the path variable `{dotted}` names a message; it must name a scalar field"
                ));
            }
            _ if !last => {
                return Err(format!(
                    "the path variable `{dotted}` goes through `{name}`, which is not a message"
                ));
            }
            _ => {}
        }
        fields.push(field);
    }
    Ok(fields)
}

fn top_level_field(
    message: &MessageDescriptor,
    name: &str,
    option: &str,
) -> Result<FieldDescriptor, String> {
    message.get_field_by_name(name).ok_or_else(|| {
        format!(
            "`{option}: \"{name}\"` names no field of `{}`",
            message.full_name()
        )
    })
}
