//! Sanitizers under attack: XSS filter-evasion payloads through `clean`,
//! and SQL identifier quoting and LIKE escaping against a real PostgreSQL.

mod support;

#[cfg(feature = "html")]
use rampart::sanitize::clean;
use rampart::sanitize::{escape, escape_like, quote_identifier};

/// Payloads in the style of OWASP's XSS Filter Evasion Cheat Sheet: case and
/// encoding tricks, broken markup, event handlers, dangerous URL schemes,
/// CSS expressions, foreign content (SVG, MathML) and parser confusion.
const XSS_PAYLOADS: &[&str] = &[
    "<SCRIPT SRC=https://xss.example/xss.js></SCRIPT>",
    "<script>alert('XSS')</script>",
    "<ScRiPt>alert(1)</sCrIpT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<SCRIPT/XSS SRC=\"https://xss.example/xss.js\"></SCRIPT>",
    "<<SCRIPT>alert(\"XSS\");//\\<</SCRIPT>",
    "<SCRIPT SRC=//xss.example/.j>",
    "</TITLE><SCRIPT>alert(\"XSS\");</SCRIPT>",
    "<IMG SRC=\"javascript:alert('XSS');\">",
    "<IMG SRC=javascript:alert('XSS')>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
    "<a onmouseover=\"alert(document.cookie)\">xxs link</a>",
    "<a onmouseover=alert(document.cookie)>xxs link</a>",
    "<IMG \"\"\"><SCRIPT>alert(\"XSS\")</SCRIPT>\"\\>",
    "<IMG SRC=javascript:alert(String.fromCharCode(88,83,83))>",
    "<IMG SRC=# onmouseover=\"alert('xxs')\">",
    "<IMG SRC= onmouseover=\"alert('xxs')\">",
    "<IMG onmouseover=\"alert('xxs')\">",
    "<IMG SRC=/ onerror=\"alert(String.fromCharCode(88,83,83))\"></img>",
    "<img src=x onerror=\"&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041\">",
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>",
    "<IMG SRC=&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041>",
    "<IMG SRC=&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A&#x61&#x6C&#x65&#x72&#x74&#x28&#x27&#x58&#x53&#x53&#x27&#x29>",
    "<IMG SRC=\"jav\tascript:alert('XSS');\">",
    "<IMG SRC=\"jav&#x09;ascript:alert('XSS');\">",
    "<IMG SRC=\"jav&#x0A;ascript:alert('XSS');\">",
    "<IMG SRC=\"jav&#x0D;ascript:alert('XSS');\">",
    "<IMG SRC=\" &#14;  javascript:alert('XSS');\">",
    "<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=alert(\"XSS\")>",
    "<iframe src=http://xss.example/scriptlet.html <",
    "<IFRAME SRC=\"javascript:alert('XSS');\"></IFRAME>",
    "<FRAMESET><FRAME SRC=\"javascript:alert('XSS');\"></FRAMESET>",
    "<INPUT TYPE=\"IMAGE\" SRC=\"javascript:alert('XSS');\">",
    "<BODY BACKGROUND=\"javascript:alert('XSS')\">",
    "<IMG DYNSRC=\"javascript:alert('XSS')\">",
    "<IMG LOWSRC=\"javascript:alert('XSS')\">",
    "<STYLE>li {list-style-image: url(\"javascript:alert('XSS')\");}</STYLE><UL><LI>XSS</br>",
    "<svg/onload=alert('XSS')>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><a xlink:href=\"javascript:alert(1)\"><text x=20 y=20>XSS</text></a></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>",
    "<math href=\"javascript:alert(1)\">CLICKME</math>",
    "<BODY ONLOAD=alert('XSS')>",
    "<BGSOUND SRC=\"javascript:alert('XSS');\">",
    "<BR SIZE=\"&{alert('XSS')}\">",
    "<LINK REL=\"stylesheet\" HREF=\"javascript:alert('XSS');\">",
    "<STYLE>@import'https://xss.example/xss.css';</STYLE>",
    "<META HTTP-EQUIV=\"Link\" Content=\"<https://xss.example/xss.css>; REL=stylesheet\">",
    "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=javascript:alert('XSS');\">",
    "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=data:text/html base64,PHNjcmlwdD5hbGVydCgnWFNTJyk8L3NjcmlwdD4K\">",
    "<IMG STYLE=\"xss:expr/*XSS*/ession(alert('XSS'))\">",
    "<DIV STYLE=\"background-image: url(javascript:alert('XSS'))\">",
    "<DIV STYLE=\"width: expression(alert('XSS'));\">",
    "<TABLE BACKGROUND=\"javascript:alert('XSS')\">",
    "<TABLE><TD BACKGROUND=\"javascript:alert('XSS')\">",
    "<BASE HREF=\"javascript:alert('XSS');//\">",
    "<OBJECT TYPE=\"text/x-scriptlet\" DATA=\"https://xss.example/scriptlet.html\"></OBJECT>",
    "<EMBED SRC=\"data:image/svg+xml;base64,PHN2ZyB4bWxuczpzdmc9Imh0dH A6Ly93d3cudzMub3JnLzIwMDAvc3ZnIiB4bWxucz0iaHR0cDovL3d3dy53My5vcmcv MjAwMC9zdmciIHhtbG5zOnhsaW5rPSJodHRwOi8vd3d3LnczLm9yZy8xOTk5L3hs aW5rIiB2ZXJzaW9uPSIxLjAiIHg9IjAiIHk9IjAiIHdpZHRoPSIxOTQiIGhlaWdodD0iMjAw IiBpZD0ieHNzIj48c2NyaXB0IHR5cGU9InRleHQvZWNtYXNjcmlwdCI+YWxlcnQoIlh TUyIpOzwvc2NyaXB0Pjwvc3ZnPg==\" type=\"image/svg+xml\" AllowScriptAccess=\"always\"></EMBED>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
    "<a href=\"vbscript:msgbox('XSS')\">x</a>",
    "<a href=\"  javascript:alert(1)\">x</a>",
    "<a href=\"java&#x00;script:alert(1)\">x</a>",
    "<a href=\"javascript&colon;alert(1)\">x</a>",
    "<XSS STYLE=\"behavior: url(xss.htc);\">",
    "<form action=\"javascript:alert(1)\"><button>go</button></form>",
    "<button formaction=javascript:alert(1)>x</button>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=\"alert(1)\">",
    "<audio src=x onerror=alert(1)>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    "<!--<img src=\"--><img src=x onerror=alert(1)//\">",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<template><script>alert(1)</script></template>",
    "<textarea><script>alert(1)</script></textarea>",
    "<p style=\"color:red\" onclick=alert(1)>x</p>",
    "<img src=\"x\" alt=\"\" onerror=\"alert(1)\" />",
    "<a href=\"https://ok.example\" target=_blank>ok</a><script>x</script>",
    "\"><script>alert(1)</script>",
    "'';!--\"<XSS>=&{()}",
];

/// Tags `clean` may emit (ammonia's default allow-list).
#[cfg(feature = "html")]
const ALLOWED_TAGS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "area",
    "article",
    "aside",
    "b",
    "bdi",
    "bdo",
    "blockquote",
    "br",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "data",
    "dd",
    "del",
    "details",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "map",
    "mark",
    "nav",
    "ol",
    "p",
    "pre",
    "q",
    "rp",
    "rt",
    "rtc",
    "ruby",
    "s",
    "samp",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "time",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
    "wbr",
];

/// Why `html` (the output of `clean`) could still run script, if it could.
#[cfg(feature = "html")]
fn danger(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>').unwrap_or(after.len());
        let tag = &after[..end];
        rest = &after[end..];
        let name: String =
            tag.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        if !ALLOWED_TAGS.contains(&name.as_str()) {
            return Some(format!("tag <{name}> in {html}"));
        }
        // ammonia writes attributes as name="value", values entity-escaped.
        for attr in tag.split(" ").skip(1) {
            let (key, value) = attr.split_once('=').unwrap_or((attr, ""));
            let value = value.trim_matches('"').trim();
            if key.starts_with("on") || key == "style" || key == "formaction" || key == "background"
            {
                return Some(format!("attribute {key} in {html}"));
            }
            if ["javascript:", "vbscript:", "data:"].iter().any(|s| value.starts_with(s)) {
                return Some(format!("URL {value} in {html}"));
            }
        }
    }
    None
}

#[cfg(feature = "html")]
#[test]
fn no_xss_payload_survives_clean() {
    assert!(XSS_PAYLOADS.len() >= 70);
    for payload in XSS_PAYLOADS {
        let out = clean(payload);
        if let Some(why) = danger(&out) {
            panic!("{payload}\n  survived as {why}");
        }
        // Cleaning is stable: cleaning the output changes nothing.
        assert_eq!(clean(&out), out, "{payload}");
    }
    // The checker itself sees danger where there is some.
    assert!(danger("<img src=x onerror=alert(1)>").is_some());
    assert!(danger("<a href=\"javascript:alert(1)\">").is_some());
    assert!(danger("<svg>").is_some());
    assert!(danger("<b>ok</b> &lt;script&gt;").is_none());
}

#[cfg(feature = "html")]
#[test]
fn clean_keeps_honest_rich_text() {
    let html =
        "<p>Hello <b>O'Brian</b>, see <a href=\"https://example.com/a?b=1&amp;c=2\">this</a>.</p>";
    assert_eq!(
        clean(html),
        "<p>Hello <b>O'Brian</b>, see <a href=\"https://example.com/a?b=1&amp;c=2\" \
         rel=\"noopener noreferrer\">this</a>.</p>"
    );
    assert_eq!(clean("Drop-down menu; SELECT * FROM t"), "Drop-down menu; SELECT * FROM t");
}

#[test]
fn escaped_payloads_are_inert_text() {
    for payload in XSS_PAYLOADS {
        let out = escape(payload);
        assert!(!out.contains('<') && !out.contains('>') && !out.contains('"'), "{out}");
    }
}

#[tokio::test]
async fn quoted_identifiers_and_escaped_like_patterns_hold_in_postgresql() {
    let Some(url) = support::database_url() else { return };
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);

    // A temporary table (gone with the session) with hostile names.
    let suffix = format!("{}_{}", std::process::id(), support_nanos());
    let table = quote_identifier(&format!("t\"; DROP TABLE x; --{suffix}")).unwrap();
    let column = quote_identifier("Name\"; SELECT pg_sleep(10); --").unwrap();
    client
        .batch_execute(&format!("CREATE TEMP TABLE {table} ({column} text NOT NULL)"))
        .await
        .unwrap();
    let rows =
        ["50% off", "50 off", "500 off", "a_b", "axb", r"back\slash", r"backxslash", "O'Brian"];
    for row in rows {
        // Values as bind parameters, always.
        client
            .execute(&format!("INSERT INTO {table} ({column}) VALUES ($1)"), &[&row])
            .await
            .unwrap();
    }
    let search = |term: &'static str| {
        let sql =
            format!(r"SELECT {column} FROM {table} WHERE {column} LIKE $1 ESCAPE '\' ORDER BY 1");
        let client = &client;
        async move {
            let pattern = format!("%{}%", escape_like(term));
            let found = client.query(&sql, &[&pattern]).await.unwrap();
            found.iter().map(|row| row.get::<_, String>(0)).collect::<Vec<_>>()
        }
    };
    assert_eq!(search("50%").await, ["50% off"]);
    assert_eq!(search("a_b").await, ["a_b"]);
    assert_eq!(search(r"k\s").await, [r"back\slash"]);
    assert_eq!(search("O'Brian").await, ["O'Brian"]);
    assert_eq!(search("%").await, ["50% off"]);
    // The column's real name is the whole hostile string, quote included.
    let name: String = client
        .query_one(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::text::regclass AND attnum = 1",
            &[&table],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "Name\"; SELECT pg_sleep(10); --");
}

fn support_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}
