//! Allow and deny lists of client networks, per listener and per route. Deny wins over
//! allow; with an allow list, only listed clients pass. Refused clients get 403 (or the
//! configured status, such as 404 to hide the endpoint); gRPC callers PERMISSION_DENIED.

use std::net::IpAddr;
use std::path::PathBuf;

use http::StatusCode;

use super::cidr::{CidrSet, parse_list};
use crate::config::model;

/// A compiled allow/deny list.
pub struct IpAcl {
    allow: Option<CidrSet>,
    deny: CidrSet,
    /// What a refused client is told.
    pub status: StatusCode,
}

impl IpAcl {
    /// Compiles inline entries and list files; the files are added to `files` so a change
    /// to one reloads the config.
    pub fn compile(spec: &model::IpAcl, files: &mut Vec<PathBuf>) -> Result<Self, String> {
        let mut load = |inline: &[crate::config::text::Text],
                        from: &[crate::config::text::Text]| {
            let mut set = CidrSet::parse(inline.iter().map(|t| &**t))?;
            for path in from {
                let path = PathBuf::from(&**path);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                for net in parse_list(&text).map_err(|e| format!("{}: {e}", path.display()))? {
                    set.insert(net);
                }
                files.push(path);
            }
            Ok::<_, String>(set)
        };
        let allow = load(&spec.allow, &spec.allow_files)?;
        let has_allow = !spec.allow.is_empty() || !spec.allow_files.is_empty();
        let deny = load(&spec.deny, &spec.deny_files)?;
        let status = StatusCode::from_u16(spec.status)
            .map_err(|_| format!("status {} is not an HTTP status", spec.status))?;
        Ok(IpAcl {
            allow: has_allow.then_some(allow),
            deny,
            status,
        })
    }

    /// Whether `client` may pass.
    pub fn allows(&self, client: IpAddr) -> bool {
        !self.deny.contains(client) && self.allow.as_ref().is_none_or(|a| a.contains(client))
    }
}
