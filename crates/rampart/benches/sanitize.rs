//! Sanitization costs, each beside its anchor in the same run.
//!
//! `cargo bench -p rampart --bench sanitize`
//!
//! - escape: 10 KB of text, once without any markup character and once
//!   with about one in twelve, beside `html_escape::encode_quoted_attribute`
//!   (same five characters, same `Cow` result) and `v_htmlescape` (SIMD;
//!   also escapes `/`);
//! - clean: a 10 KB HTML document (formatting, links, tables, and some
//!   hostile markup) through `clean`, beside ammonia's own `clean` with its
//!   defaults.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart::sanitize::{clean, escape};

fn text(target: usize, with_markup: bool) -> String {
    let sentence = if with_markup {
        "Tom & Jerry's \"show\" <b>returns</b> on Monday; don't miss it. "
    } else {
        "Tom and Jerry return on Monday for a new season; do not miss it. "
    };
    sentence.repeat(target / sentence.len() + 1)
}

fn html(target: usize) -> String {
    let block = concat!(
        "<h2>Release notes</h2><p>This <b>release</b> brings <i>faster</i> builds, ",
        "see <a href=\"https://example.com/notes?v=2&amp;lang=en\">the notes</a>.</p>",
        "<ul><li>One</li><li>Two <code>x &lt; y</code></li></ul>",
        "<table><tr><td>a</td><td>b</td></tr></table>",
        "<img src=x onerror=alert(1)><script>alert(1)</script>",
        "<a href=\"javascript:alert(1)\" onclick=\"steal()\">click</a>",
        "<svg><style><img src=x onerror=alert(1)></style></svg>\n",
    );
    block.repeat(target / block.len() + 1)
}

fn escaping(c: &mut Criterion) {
    for (name, input) in [("no markup", text(10_000, false)), ("markup", text(10_000, true))] {
        let mut group = c.benchmark_group(format!("escape 10 KB, {name}"));
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function("rampart escape", |b| b.iter(|| escape(black_box(&input)).len()));
        group.bench_function("html-escape encode_quoted_attribute (anchor)", |b| {
            b.iter(|| html_escape::encode_quoted_attribute(black_box(&input)).len());
        });
        group.bench_function("v_htmlescape escape_string (anchor)", |b| {
            b.iter(|| {
                let mut out = String::with_capacity(input.len());
                v_htmlescape::escape_string(black_box(&input), &mut out);
                out.len()
            });
        });
        group.finish();
    }
}

fn cleaning(c: &mut Criterion) {
    let input = html(10_000);
    let mut group = c.benchmark_group(format!("clean {} B of HTML", input.len()));
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("rampart clean", |b| b.iter(|| clean(black_box(&input))));
    group.bench_function("ammonia clean, defaults (anchor)", |b| {
        b.iter(|| ammonia::clean(black_box(&input)));
    });
    group.finish();
}

criterion_group!(benches, escaping, cleaning);
criterion_main!(benches);
