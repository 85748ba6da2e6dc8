//! `mquictt bench compare --quick --load-curve-only --out DIR`: the load curve's quick variant
//! through the command line. Every broker and transport (Mosquitto over TCP and TLS, MQuicTT
//! over TCP, TLS and QUIC) runs at QoS 0, 1 and 2 with 2 and 4 subscribers; each point has the
//! broker's CPU time and memory from /proc, and the CSV, markdown and charts are written.
//! No assertion depends on which broker is faster.

mod common;

use common::{assert_success, mquictt};

#[test]
fn quick_load_curve_measures_every_broker_transport_and_qos() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let output = mquictt(
        &[
            "bench",
            "compare",
            "--quick",
            "--load-curve-only",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_success(
        &output,
        "bench compare --quick --load-curve-only (needs `sudo apt-get install mosquitto`)",
    );
    assert!(
        !out.join("comparison.md").exists(),
        "--load-curve-only runs no comparison cases"
    );

    let csv = std::fs::read_to_string(out.join("load_curve.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let combos = [
        ("mosquitto", "TCP"),
        ("mosquitto", "TLS"),
        ("mquictt", "TCP"),
        ("mquictt", "TLS"),
        ("mquictt", "QUIC"),
    ];
    assert_eq!(rows.len(), combos.len() * 3 * 2, "{csv}");
    for (broker, transport) in combos {
        // CPU time moves in 10 ms ticks: one short step of a broker that got little work on a
        // loaded machine may read 0, the whole curve may not.
        let mut cpu_total = 0.0;
        for qos in ["0", "1", "2"] {
            for subscribers in ["2", "4"] {
                let row = rows
                    .iter()
                    .find(|r| {
                        r[column("broker")] == broker
                            && r[column("transport")] == transport
                            && r[column("qos")] == qos
                            && r[column("subscribers")] == subscribers
                    })
                    .unwrap_or_else(|| {
                        panic!("no row for {broker} {transport} QoS {qos} x{subscribers}")
                    });
                let label = format!("{broker} {transport} QoS {qos} x{subscribers}: {row:?}");
                let number = |name: &str| row[column(name)].parse::<f64>().unwrap();
                assert_eq!(row[column("error")], "\"\"", "{label}");
                assert!(number("cpu_percent") >= 0.0, "{label}");
                cpu_total += number("cpu_percent");
                assert!(number("mean_rss_kib") > 0.0, "{label}");
                assert!(number("peak_rss_kib") >= number("mean_rss_kib"), "{label}");
                assert!(number("delivered_per_sec") > 0.0, "{label}");
                if qos != "0" {
                    assert_eq!(number("lost"), 0.0, "{label}: QoS {qos} loses nothing");
                }
            }
        }
        assert!(
            cpu_total > 0.0,
            "{broker} {transport}: CPU time read from /proc"
        );
    }

    let markdown = std::fs::read_to_string(out.join("load_curve.md")).unwrap();
    for qos in 0..=2 {
        assert!(
            markdown.contains(&format!("QoS {qos}: broker CPU %")),
            "{markdown}"
        );
        for metric in ["cpu", "rss"] {
            let stem = format!("load_curve_{metric}_qos{qos}");
            let svg = std::fs::read_to_string(out.join(format!("{stem}.svg"))).unwrap();
            assert!(svg.contains("mquictt QUIC") && svg.contains("mosquitto TLS"));
            let png = std::fs::read(out.join(format!("{stem}.png"))).unwrap();
            assert_eq!(png.get(..4), Some(&b"\x89PNG"[..]));
        }
    }
    assert!(!markdown.contains("Errors seen"), "{markdown}");
}
