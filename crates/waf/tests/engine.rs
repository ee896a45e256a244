//! SecLang semantics through the public API: each test loads a few rules and checks what
//! a gateway would see (matched rules, verdicts, TX values).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use waf::{InterruptAction, RuleSet, Transaction, Verdict};

fn rules(text: &str) -> RuleSet {
    match RuleSet::from_text(text, Path::new("inline.conf")) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

/// Runs a GET (or a POST with `body`) through phases 1 and 2 and returns the transaction.
fn run<'r>(
    rules: &'r RuleSet,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Transaction<'r> {
    let mut tx = rules.transaction();
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
    tx.connection(ip, 5555, IpAddr::V4(Ipv4Addr::LOCALHOST), 80);
    tx.request_line(
        if body.is_empty() { "GET" } else { "POST" },
        uri,
        "HTTP/1.1",
    );
    for (k, v) in headers {
        tx.request_header(k, v.as_bytes());
    }
    tx.process_request_headers();
    tx.append_request_body(body);
    tx.process_request_body();
    tx
}

fn ids(tx: &Transaction<'_>) -> Vec<u32> {
    tx.matched_rules().iter().map(|m| m.id).collect()
}

const BASE: &str = "SecRuleEngine On\nSecRequestBodyAccess On\nSecDefaultAction \"phase:1,log,pass\"\nSecDefaultAction \"phase:2,log,pass\"\n";

#[test]
fn a_chain_matches_only_when_every_link_does_and_logs_once() {
    let r = rules(&format!(
        "{BASE}SecRule ARGS:a \"@rx ^x\" \"id:1,phase:1,chain\"\n  SecRule ARGS:b \"@rx ^y\" \"setvar:tx.hit=1\"\n"
    ));
    assert_eq!(ids(&run(&r, "/?a=x&b=y", &[], b"")), vec![1]);
    let tx = run(&r, "/?a=x&b=n", &[], b"");
    assert!(ids(&tx).is_empty());
    assert_eq!(tx.tx("hit"), None);
}

#[test]
fn skip_after_jumps_past_the_marker() {
    let r = rules(&format!(
        "{BASE}SecAction \"id:1,phase:1,pass,nolog,skipAfter:END\"\n\
         SecAction \"id:2,phase:1,pass\"\nSecMarker END\nSecAction \"id:3,phase:1,pass\"\n\
         SecAction \"id:4,phase:1,pass,skip:1\"\nSecAction \"id:5,phase:1,pass\"\nSecAction \"id:6,phase:1,pass\"\n"
    ));
    assert_eq!(ids(&run(&r, "/", &[], b"")), vec![3, 4, 6]);
}

#[test]
fn setvar_assigns_adds_subtracts_and_deletes() {
    let r = rules(&format!(
        "{BASE}SecAction \"id:1,phase:1,nolog,pass,setvar:tx.n=10,setvar:tx.n=+5,setvar:'tx.n=-3',\
         setvar:tx.m=%{{tx.n}}-%{{REQUEST_METHOD}},setvar:tx.gone=1,setvar:!tx.gone,setvar:tx.new=+2\"\n"
    ));
    let tx = run(&r, "/", &[], b"");
    assert_eq!(tx.tx("n"), Some(&b"12"[..]));
    assert_eq!(tx.tx("M"), Some(&b"12-GET"[..]));
    assert_eq!(tx.tx("gone"), None);
    assert_eq!(tx.tx("new"), Some(&b"2"[..]));
}

#[test]
fn ctl_remove_target_and_static_exclusions_drop_members() {
    let r = rules(&format!(
        "{BASE}SecRule REQUEST_URI \"@rx ^/login\" \"id:1,phase:1,pass,nolog,ctl:ruleRemoveTargetById=10;ARGS:pwd\"\n\
         SecRule ARGS \"@rx attack\" \"id:10,phase:1,pass\"\n\
         SecRule ARGS|!ARGS:/^safe_/ \"@rx attack\" \"id:11,phase:1,pass\"\n"
    ));
    assert_eq!(ids(&run(&r, "/login?pwd=attack", &[], b"")), vec![11]);
    assert_eq!(ids(&run(&r, "/other?pwd=attack", &[], b"")), vec![10, 11]);
    assert_eq!(ids(&run(&r, "/other?safe_x=attack", &[], b"")), vec![10]);
}

#[test]
fn ctl_rule_remove_by_id_and_tag_at_runtime() {
    let r = rules(&format!(
        "{BASE}SecAction \"id:1,phase:1,pass,nolog,ctl:ruleRemoveById=2-3,ctl:ruleRemoveByTag=noisy\"\n\
         SecAction \"id:2,phase:1,pass\"\nSecAction \"id:3,phase:2,pass\"\n\
         SecAction \"id:4,phase:2,pass,tag:noisy\"\nSecAction \"id:5,phase:2,pass,tag:quiet\"\n"
    ));
    assert_eq!(ids(&run(&r, "/", &[], b"")), vec![5]);
}

#[test]
fn counts_and_case_insensitive_names() {
    let r = rules(&format!(
        "{BASE}SecRule &ARGS \"@eq 3\" \"id:1,phase:1,pass\"\n\
         SecRule &REQUEST_HEADERS:X-Missing \"@eq 0\" \"id:2,phase:1,pass\"\n\
         SecRule REQUEST_HEADERS:user-agent \"@rx curl\" \"id:3,phase:1,pass,msg:'ua %{{MATCHED_VAR_NAME}}'\"\n"
    ));
    let tx = run(&r, "/?a=1&b=2&a=3", &[("User-Agent", "curl/8")], b"");
    assert_eq!(ids(&tx), vec![1, 2, 3]);
    assert_eq!(tx.matched_rules()[2].msg, "ua REQUEST_HEADERS:User-Agent");
}

#[test]
fn multi_match_tries_every_transformation_step() {
    let single = rules(&format!(
        "{BASE}SecRule ARGS \"@rx ABC\" \"id:1,phase:1,pass,t:lowercase\"\n"
    ));
    let multi = rules(&format!(
        "{BASE}SecRule ARGS \"@rx ABC\" \"id:1,phase:1,pass,t:lowercase,multiMatch\"\n"
    ));
    assert!(ids(&run(&single, "/?q=ABC", &[], b"")).is_empty());
    assert_eq!(ids(&run(&multi, "/?q=ABC", &[], b"")), vec![1]);
}

#[test]
fn capture_feeds_the_chain_and_macros_in_logdata() {
    let r = rules(&format!(
        "{BASE}SecRule ARGS:v \"@rx ^(\\w+)=(\\w+)$\" \"id:7,phase:1,pass,capture,chain,\
         msg:'rule %{{rule.id}} on %{{REQUEST_HEADERS.host}}',logdata:'%{{TX.1}} vs %{{TX.2}} in %{{MATCHED_VAR_NAME}}'\"\n\
           SecRule TX:1 \"!@streq %{{TX.2}}\" \"t:none\"\n"
    ));
    let tx = run(&r, "/?v=a=b", &[("Host", "example.test")], b"");
    let m = &tx.matched_rules()[0];
    assert_eq!((m.id, m.msg.as_str()), (7, "rule 7 on example.test"));
    assert_eq!(m.logdata, "a vs b in TX:1");
    assert!(ids(&run(&r, "/?v=a=a", &[], b"")).is_empty());
}

#[test]
fn detection_only_logs_while_on_interrupts_with_the_default_action() {
    let rule = "SecDefaultAction \"phase:1,log,deny,status:418\"\nSecRule ARGS \"@rx evil\" \"id:9,phase:1,block\"\n";
    let on = rules(&format!("SecRuleEngine On\n{rule}"));
    let mut tx = on.transaction();
    tx.request_line("GET", "/?x=evil", "HTTP/1.1");
    match tx.process_request_headers() {
        Verdict::Interrupt(i) => assert_eq!(
            (i.status, i.rule_id, i.action),
            (418, 9, InterruptAction::Deny)
        ),
        Verdict::Continue => panic!("expected an interruption"),
    }
    assert!(tx.is_interrupted().is_some());
    let detect = rules(&format!("SecRuleEngine DetectionOnly\n{rule}"));
    let mut tx = detect.transaction();
    tx.request_line("GET", "/?x=evil", "HTTP/1.1");
    assert_eq!(tx.process_request_headers(), Verdict::Continue);
    assert_eq!(ids(&tx), vec![9]);
    assert!(tx.matched_rules()[0].disruptive);
}

#[test]
fn json_multipart_and_urlencoded_bodies_become_arguments() {
    let r = rules(&format!(
        "{BASE}SecArgumentSeparator ;\n\
         SecRule REQUEST_HEADERS:Content-Type \"@rx ^application/json\" \"id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON\"\n\
         SecRule ARGS_POST_NAMES \"@rx .\" \"id:2,phase:2,pass,setvar:'tx.names=%{{tx.names}} %{{MATCHED_VAR}}'\"\n\
         SecRule FILES \"@rx \\.php$\" \"id:3,phase:2,pass\"\n\
         SecRule REQBODY_ERROR \"@eq 1\" \"id:4,phase:2,pass\"\n"
    ));
    let tx = run(
        &r,
        "/",
        &[("Content-Type", "application/json")],
        br#"{"a":{"b":1},"l":["x"]}"#,
    );
    assert_eq!(tx.tx("names"), Some(&b" json.a.b json.l.array_0"[..]));
    let tx = run(
        &r,
        "/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"p=1;q=2",
    );
    assert_eq!(tx.tx("names"), Some(&b" p q"[..]));
    let body = b"--B\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n--B\r\n\
Content-Disposition: form-data; name=\"up\"; filename=\"shell.php\"\r\n\r\n<?php\r\n--B--\r\n";
    let tx = run(
        &r,
        "/",
        &[("Content-Type", "multipart/form-data; boundary=B")],
        body,
    );
    assert_eq!(ids(&tx), vec![2, 3]);
    assert_eq!(tx.tx("names"), Some(&b" f"[..]));
    let tx = run(&r, "/", &[("Content-Type", "application/json")], b"{broken");
    assert_eq!(ids(&tx), vec![4]);
}

#[test]
fn xml_text_and_attributes() {
    let r = rules(&format!(
        "{BASE}SecRule REQUEST_HEADERS:Content-Type \"@rx xml\" \"id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=XML\"\n\
         SecRule XML:/* \"@rx secret\" \"id:2,phase:2,pass\"\n\
         SecRule XML://@* \"@rx ^evil$\" \"id:3,phase:2,pass\"\n"
    ));
    let tx = run(
        &r,
        "/",
        &[("Content-Type", "text/xml")],
        b"<a k=\"evil\"><b>top secret</b></a>",
    );
    assert_eq!(ids(&tx), vec![2, 3]);
}

/// CRS rules read REQUEST_BODY beside `XML:/*`: an XML body's element and attribute
/// names must not reach them through its raw bytes. Other bodies stay REQUEST_BODY.
#[test]
fn request_body_holds_every_body_but_a_parsed_xml_one() {
    let r = rules(&format!(
        "{BASE}SecRule REQUEST_HEADERS:Content-Type \"@rx xml\" \"id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=XML\"\n\
         SecRule REQUEST_HEADERS:Content-Type \"@rx json\" \"id:2,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON\"\n\
         SecRule REQUEST_BODY \"@rx java\\.Runtime\" \"id:3,phase:2,pass\"\n\
         SecRule &REQUEST_BODY \"@eq 0\" \"id:4,phase:2,pass\"\n"
    ));
    let xml = b"<x><java.Runtime a=\"v\">t</java.Runtime></x>";
    assert_eq!(
        ids(&run(&r, "/", &[("Content-Type", "text/xml")], xml)),
        vec![4]
    );
    let broken = b"<x><java.Runtime>";
    assert_eq!(
        ids(&run(&r, "/", &[("Content-Type", "text/xml")], broken)),
        vec![4],
        "a malformed XML body is REQBODY_ERROR's, not REQUEST_BODY's"
    );
    let json = b"{\"java.Runtime\": 1}";
    let form = b"a=java.Runtime";
    for (ct, body) in [
        ("application/json", &json[..]),
        ("application/x-www-form-urlencoded", &form[..]),
        ("text/plain", &xml[..]),
    ] {
        assert_eq!(
            ids(&run(&r, "/", &[("Content-Type", ct)], body)),
            vec![3],
            "{ct}"
        );
    }
}

#[test]
fn body_limit_rejects_when_enforcing() {
    let r = rules(
        "SecRuleEngine On\nSecRequestBodyAccess On\nSecRequestBodyLimit 4\nSecRequestBodyLimitAction Reject\n",
    );
    let mut tx = r.transaction();
    tx.request_line("POST", "/", "HTTP/1.1");
    tx.process_request_headers();
    assert_eq!(tx.append_request_body(b"abc"), Verdict::Continue);
    assert!(matches!(tx.append_request_body(b"de"), Verdict::Interrupt(i) if i.status == 413));
}

#[test]
fn streamed_messages_are_judged_one_by_one_with_the_headers() {
    let r = rules(&format!(
        "{BASE}SecRule REQUEST_HEADERS:x-client \"@rx old\" \"id:1,phase:2,pass,log,setvar:tx.score=+2\"\n\
         SecRule ARGS_POST \"@rx attack\" \"id:2,phase:2,pass,log,setvar:tx.score=+3\"\n\
         SecRule ARGS_POST \"@rx worse\" \"id:3,phase:2,pass,log,setvar:tx.score=+5\"\n\
         SecRule TX:score \"@ge 6\" \"id:9,phase:2,deny,status:403\"\n"
    ));
    let mut tx = r.transaction();
    tx.request_line("POST", "/svc/Method", "HTTP/2");
    tx.request_header("x-client", b"old-app");
    tx.process_request_headers();
    // The header rule scores with every message and one low match per message is allowed:
    // neither adds up over a long stream.
    let low = vec![("1".to_string(), b"attack".to_vec())];
    for _ in 0..100 {
        assert_eq!(tx.process_message(&low, b"raw"), Verdict::Continue);
    }
    assert_eq!(ids(&tx), vec![1, 2], "each rule is logged once per stream");
    // A message that crosses the threshold with the headers' score is refused.
    let high = vec![("1".to_string(), b"worse attack".to_vec())];
    assert!(matches!(tx.process_message(&high, b"raw"), Verdict::Interrupt(i) if i.rule_id == 9));
}

#[test]
fn each_message_is_transformed_afresh() {
    // Transformation results are remembered per value; a later message whose text lands
    // where an earlier one lay must still be judged on its own bytes.
    let r = rules(&format!(
        "{BASE}SecRule ARGS_POST \"@rx ^drop tables$\" \"id:5,phase:2,t:lowercase,deny,status:403\"\n"
    ));
    let mut tx = r.transaction();
    tx.request_line("POST", "/svc/Method", "HTTP/2");
    tx.process_request_headers();
    for _ in 0..50 {
        let clean = vec![("1".to_string(), b"HELLO WORLD".to_vec())];
        assert_eq!(tx.process_message(&clean, b"raw"), Verdict::Continue);
    }
    let attack = vec![("1".to_string(), b"DROP TABLES".to_vec())];
    assert!(matches!(tx.process_message(&attack, b"raw"), Verdict::Interrupt(i) if i.rule_id == 5));
}

#[test]
fn message_field_paths_are_selectable_but_not_inspected_as_names() {
    let r = rules(&format!(
        "{BASE}SecRule ARGS_NAMES \"@rx ^\\d\" \"id:1,phase:2,log,pass\"\n\
         SecRule ARGS_POST:3.2 \"@rx evil\" \"id:2,phase:2,log,pass\"\n\
         SecRule ARGS|!ARGS:1 \"@rx evil\" \"id:3,phase:2,log,pass\"\n"
    ));
    let mut tx = r.transaction();
    tx.request_line("POST", "/svc/Method", "HTTP/2");
    tx.process_request_headers();
    let fields = vec![
        ("1".to_string(), b"evil".to_vec()),
        ("3.2".to_string(), b"evil".to_vec()),
    ];
    tx.process_message(&fields, b"raw");
    assert_eq!(ids(&tx), vec![2, 3]);
    // A form body's names are request text and are inspected.
    let form = run(
        &r,
        "/f",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"1=a",
    );
    assert_eq!(ids(&form), vec![1]);
}

#[test]
fn a_transaction_starts_clean_after_others_on_the_same_thread() {
    // Finished transactions leave their tables for the next ones: nothing they held may
    // show through, neither TX variables nor cached transformations.
    let r = rules(&format!(
        "{BASE}SecRule ARGS:flag \"@streq on\" \"id:1,phase:1,pass,nolog,setvar:tx.flagged=1\"\n\
         SecRule TX:flagged \"@eq 1\" \"id:2,phase:1,log,pass\"\n\
         SecRule REQUEST_HEADERS:x-note \"@rx ^drop tables$\" \"id:3,phase:1,t:lowercase,log,pass\"\n"
    ));
    for _ in 0..20 {
        let tx = run(&r, "/?flag=on", &[("x-note", "HELLO WORLD")], b"");
        assert_eq!(ids(&tx), vec![2]);
    }
    let tx = run(&r, "/", &[("x-note", "DROP TABLES")], b"");
    assert_eq!(
        ids(&tx),
        vec![3],
        "no TX from earlier transactions, the new header's own text"
    );
}

#[test]
fn response_phases_see_status_headers_and_body() {
    let r = rules(
        "SecRuleEngine On\nSecResponseBodyAccess On\nSecResponseBodyMimeType text/html\n\
         SecRule RESPONSE_STATUS \"@eq 500\" \"id:1,phase:3,pass,log\"\n\
         SecRule RESPONSE_BODY \"@rx stack trace\" \"id:2,phase:4,deny,status:502,log\"\n",
    );
    let mut tx = r.transaction();
    tx.request_line("GET", "/", "HTTP/1.1");
    tx.process_request_headers();
    tx.process_request_body();
    tx.response_status(500, "HTTP/1.1");
    tx.response_header("Content-Type", b"text/html; charset=utf-8");
    assert_eq!(tx.process_response_headers(), Verdict::Continue);
    tx.append_response_body(b"<pre>stack trace</pre>");
    assert!(matches!(tx.process_response_body(), Verdict::Interrupt(i) if i.status == 502));
    assert_eq!(ids(&tx), vec![1, 2]);
}

#[test]
fn load_errors_name_file_and_line() {
    let cases = [
        (
            "SecRuleEngine On\n\nSecFrobnicate On\n",
            3,
            "unsupported directive",
        ),
        (
            "SecRule NOPE \"@rx a\" \"id:1\"\n",
            1,
            "unsupported variable `NOPE`",
        ),
        (
            "SecRule ARGS \"@rx a\" \\\n  \"id:1,\\\n  bogus\"\n",
            1,
            "unsupported action `bogus`",
        ),
        ("SecRule ARGS \"@rx a\" \"phase:1\"\n", 1, "rule has no id"),
        (
            "SecRule ARGS \"@rx a\" \"id:1,t:nosuch\"\n",
            1,
            "unsupported transformation",
        ),
        ("SecRule ARGS \"@nosuch a\" \"id:1\"\n", 1, "@nosuch"),
        ("SecAction \"id:1,chain\"\n", 0, "no rule follows"),
        (
            "SecRuleUpdateTargetById 1 ARGS:a ARGS\n",
            1,
            "at most 2 argument",
        ),
        ("SecMarker A B\n", 1, "at most 1 argument"),
    ];
    for (text, line, what) in cases {
        let err = RuleSet::from_text(text, Path::new("rules/x.conf")).unwrap_err();
        assert_eq!(err.line, line, "{text}: {err}");
        assert!(
            err.to_string()
                .starts_with(&format!("rules/x.conf:{line}: ")),
            "{err}"
        );
        assert!(err.message.contains(what), "{err}");
    }
}

#[test]
fn includes_resolve_globs_relative_to_the_including_file() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("waf-include");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(
        dir.join("main.conf"),
        "SecRuleEngine On\nInclude rules/*.conf\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("rules/a.conf"),
        "SecAction \"id:1,phase:1,pass,log\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("rules/b.conf"),
        "SecAction \"id:2,phase:1,pass,log\"\n\nSecBad x\n",
    )
    .unwrap();
    let err = RuleSet::load(&[dir.join("main.conf")]).unwrap_err();
    assert_eq!((err.file, err.line), (dir.join("rules/b.conf"), 3));
    std::fs::write(
        dir.join("rules/b.conf"),
        "SecAction \"id:2,phase:1,pass,log\"\n",
    )
    .unwrap();
    let r = RuleSet::load(&[dir.join("main.conf")]).unwrap();
    assert_eq!(r.rule_count(), 2);
    assert_eq!(ids(&run(&r, "/", &[], b"")), vec![1, 2]);
}

#[test]
fn rule_sets_are_shared_across_threads_and_transactions_move_between_them() {
    fn shared<T: Send + Sync>() {}
    fn movable<T: Send>() {}
    shared::<RuleSet>();
    movable::<Transaction<'static>>();
    let r = std::sync::Arc::new(rules(&format!(
        "{BASE}SecRule ARGS \"@rx x\" \"id:1,phase:1,pass\"\n"
    )));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let r = std::sync::Arc::clone(&r);
            std::thread::spawn(move || ids(&run(&r, "/?a=x", &[], b"")))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), vec![1]);
    }
}

#[test]
fn ctl_can_remove_a_single_valued_target() {
    let r = rules(&format!(
        "{BASE}SecRule REQUEST_FILENAME \"!@validateByteRange 45-47,48-57,65-90,95,97-122\" \
         \"id:1,phase:1,pass,nolog,ctl:ruleRemoveTargetByTag=perf;REQUEST_FILENAME\"\n\
         SecRule REQUEST_FILENAME|ARGS \"@pm document.cookie\" \"id:2,phase:2,pass,tag:perf\"\n"
    ));
    assert!(ids(&run(&r, "/js/document.cookie", &[], b"")).is_empty());
    assert_eq!(
        ids(&run(&r, "/js/document.cookie?a=document.cookie", &[], b"")),
        vec![2]
    );
    assert_eq!(ids(&run(&r, "/js/<document.cookie>", &[], b"")), vec![2]);
}

/// Mangled bodies of every kind must never panic the engine: they come from the network.
#[test]
fn mangled_bodies_never_panic() {
    let r = rules(&format!(
        "{BASE}SecRule REQUEST_HEADERS:Content-Type \"@rx json\" \"id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON\"\n\
         SecRule REQUEST_HEADERS:Content-Type \"@rx xml\" \"id:2,phase:1,pass,nolog,ctl:requestBodyProcessor=XML\"\n\
         SecRule ARGS|ARGS_NAMES|FILES|XML:/*|XML://@*|MULTIPART_PART_HEADERS \"@rx z\" \"id:3,phase:2,pass\"\n"
    ));
    let seeds: [(&str, &[u8]); 4] = [
        ("application/json", br#"{"a":[1,{"b":"c"}],"d":null}"#),
        ("text/xml", b"<?xml version=\"1.0\"?><a x='1'><b>t</b><![CDATA[c]]><!-- c --></a>"),
        ("multipart/form-data; boundary=\"B\"", b"--B\r\nContent-Disposition: form-data; name=\"a\"; filename=\"f\\\"x\"\r\n\r\nv\r\n--B--\r\n"),
        ("application/x-www-form-urlencoded", b"a=%41%2&b=%zz&&=c&d"),
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..2000 {
        let (ct, seed) = seeds[round % seeds.len()];
        let mut body = seed.to_vec();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % (body.len() + 1);
            match next() % 3 {
                0 if at < body.len() => {
                    body.remove(at);
                }
                1 => body.insert(at, (next() % 256) as u8),
                _ => body.truncate(at),
            }
        }
        let tx = run(&r, "/", &[("Content-Type", ct)], &body);
        let _ = tx.matched_rules();
    }
}
