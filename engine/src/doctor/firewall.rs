//! This computer's firewall, as far as it can be read: nftables (`nft list ruleset`, which
//! also shows iptables-nft rules), else `iptables-save`, and `ufw status`. Reading needs
//! root on most systems; when it cannot be read the doctor judges from its probes instead.

use std::process::Command;

use serde::Serialize;

/// A rule (or a chain's policy) that stops LAN Chat's traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocking {
    /// "nftables", "iptables", "ufw".
    pub tool: &'static str,
    /// Where: "table inet filter, chain input".
    pub place: String,
    /// The rule as the tool prints it ("udp dport 5353 drop", "policy drop").
    pub rule: String,
    /// The command that lets the traffic in.
    pub fix: String,
}

/// What was read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Firewall {
    /// The tools whose rules were read.
    pub read: Vec<&'static str>,
    /// Tools present whose rules could not be read, and why.
    pub unreadable: Vec<String>,
    /// What drops mDNS (UDP 5353 in).
    pub mdns: Vec<Blocking>,
    /// What drops the host's ports (TCP in).
    pub port: Vec<Blocking>,
}

/// Reads the rules, judging them for mDNS and TCP `ports` (a contiguous range).
pub fn read(ports: (u16, u16)) -> Firewall {
    let mut firewall = Firewall::default();
    match run("nft", &["list", "ruleset"]) {
        Ok(text) => {
            firewall.read.push("nftables");
            judge_nft(&text, ports, &mut firewall);
        }
        Err(Some(why)) => firewall.unreadable.push(format!("nftables: {why}")),
        Err(None) => match run("iptables-save", &[]) {
            Ok(text) => {
                firewall.read.push("iptables");
                judge_iptables(&text, ports, &mut firewall);
            }
            Err(Some(why)) => firewall.unreadable.push(format!("iptables: {why}")),
            Err(None) => {}
        },
    }
    match run("ufw", &["status"]) {
        Ok(text) => {
            firewall.read.push("ufw");
            judge_ufw(&text, ports, &mut firewall);
        }
        Err(Some(why)) => firewall.unreadable.push(format!("ufw: {why}")),
        Err(None) => {}
    }
    firewall
}

/// The tool's output; `Err(None)` when it is not installed, `Err(Some(why))` when it fails.
fn run(tool: &str, args: &[&str]) -> Result<String, Option<String>> {
    let found = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| std::path::Path::new(dir).join(tool))
        .find(|path| path.exists())
        .ok_or(None)?;
    let output = Command::new(found)
        .args(args)
        .output()
        .map_err(|e| Some(e.to_string()))?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(Some(if why.is_empty() {
            format!("exited with {}", output.status)
        } else {
            why
        }));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn mentions_mdns(rule: &str) -> bool {
    rule.contains("5353") || rule.contains("224.0.0.251") || rule.contains("multicast")
}

fn mentions_port(rule: &str, (first, last): (u16, u16)) -> bool {
    rule.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u16>().ok())
        .any(|n| (first..=last).contains(&n))
}

fn stops(rule: &str) -> bool {
    rule.split_whitespace()
        .any(|w| matches!(w, "drop" | "reject" | "DROP" | "REJECT"))
}

fn judge_nft(text: &str, ports: (u16, u16), out: &mut Firewall) {
    struct Chain {
        place: String,
        family: String,
        table: String,
        name: String,
        input: bool,
        policy_drop: bool,
        allows_mdns: bool,
        allows_port: bool,
    }
    let mut table = (String::new(), String::new());
    let mut chain: Option<Chain> = None;
    let finish = |chain: Option<Chain>, out: &mut Firewall| {
        let Some(c) = chain.filter(|c| c.input && c.policy_drop) else {
            return;
        };
        let fix = |rule: &str| {
            format!(
                "sudo nft insert rule {} {} {} {rule} accept",
                c.family, c.table, c.name
            )
        };
        if !c.allows_mdns && out.mdns.iter().all(|b| b.place != c.place) {
            out.mdns.push(Blocking {
                tool: "nftables",
                place: c.place.clone(),
                rule: "policy drop (and no rule accepts UDP 5353)".into(),
                fix: fix("udp dport 5353"),
            });
        }
        if !c.allows_port && out.port.iter().all(|b| b.place != c.place) {
            out.port.push(Blocking {
                tool: "nftables",
                place: c.place.clone(),
                rule: format!(
                    "policy drop (and no rule accepts TCP {}-{})",
                    ports.0, ports.1
                ),
                fix: fix(&format!("tcp dport {}-{}", ports.0, ports.1)),
            });
        }
    };
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["table", family, name, "{"] => table = ((*family).to_owned(), (*name).to_owned()),
            ["chain", name, "{"] => {
                finish(chain.take(), out);
                chain = Some(Chain {
                    place: format!("table {} {}, chain {name}", table.0, table.1),
                    family: table.0.clone(),
                    table: table.1.clone(),
                    name: (*name).to_owned(),
                    input: false,
                    policy_drop: false,
                    allows_mdns: false,
                    allows_port: false,
                });
            }
            ["type", ..] => {
                if let Some(c) = chain.as_mut() {
                    c.input = line.contains("hook input") || line.contains("hook prerouting");
                    c.policy_drop = line.contains("policy drop");
                }
            }
            [] | ["}"] => {}
            _ => {
                let Some(c) = chain.as_mut().filter(|c| c.input) else {
                    continue;
                };
                let accept = line.split_whitespace().any(|w| w == "accept");
                if accept && mentions_mdns(line) && !line.contains("tcp") {
                    c.allows_mdns = true;
                }
                if accept && mentions_port(line, ports) && !line.contains("udp") {
                    c.allows_port = true;
                }
                if !stops(line) {
                    continue;
                }
                let fix = |rule: &str| {
                    format!(
                        "sudo nft insert rule {} {} {} {rule} accept",
                        c.family, c.table, c.name
                    )
                };
                if mentions_mdns(line) && !c.allows_mdns {
                    out.mdns.push(Blocking {
                        tool: "nftables",
                        place: c.place.clone(),
                        rule: line.to_owned(),
                        fix: fix("udp dport 5353"),
                    });
                }
                if mentions_port(line, ports) && !c.allows_port {
                    out.port.push(Blocking {
                        tool: "nftables",
                        place: c.place.clone(),
                        rule: line.to_owned(),
                        fix: fix(&format!("tcp dport {}-{}", ports.0, ports.1)),
                    });
                }
            }
        }
    }
    finish(chain.take(), out);
}

fn judge_iptables(text: &str, ports: (u16, u16), out: &mut Firewall) {
    let mdns_fix = "sudo iptables -I INPUT -p udp --dport 5353 -j ACCEPT".to_owned();
    let port_fix = format!(
        "sudo iptables -I INPUT -p tcp --dport {}:{} -j ACCEPT",
        ports.0, ports.1
    );
    let mut policy_drop = false;
    let (mut allows_mdns, mut allows_port) = (false, false);
    for line in text.lines().map(str::trim) {
        if line.starts_with(":INPUT DROP") {
            policy_drop = true;
        }
        if !line.starts_with("-A INPUT") {
            continue;
        }
        if line.contains("-j ACCEPT") {
            allows_mdns |= mentions_mdns(line) && !line.contains("-p tcp");
            allows_port |= mentions_port(line, ports) && !line.contains("-p udp");
        }
        if !stops(line) {
            continue;
        }
        let blocking = |fix: &str| Blocking {
            tool: "iptables",
            place: "chain INPUT".into(),
            rule: line.to_owned(),
            fix: fix.to_owned(),
        };
        if mentions_mdns(line) && !allows_mdns {
            out.mdns.push(blocking(&mdns_fix));
        }
        if mentions_port(line, ports) && !allows_port {
            out.port.push(blocking(&port_fix));
        }
    }
    let policy = |fix: String| Blocking {
        tool: "iptables",
        place: "chain INPUT".into(),
        rule: "policy DROP".into(),
        fix,
    };
    if policy_drop && !allows_mdns && out.mdns.is_empty() {
        out.mdns.push(policy(mdns_fix));
    }
    if policy_drop && !allows_port && out.port.is_empty() {
        out.port.push(policy(port_fix));
    }
}

fn judge_ufw(text: &str, ports: (u16, u16), out: &mut Firewall) {
    if !text.contains("Status: active") {
        return;
    }
    let allowed =
        |want: &dyn Fn(&str) -> bool| text.lines().any(|l| l.contains("ALLOW") && want(l));
    if !allowed(&|l: &str| l.contains("5353")) {
        out.mdns.push(Blocking {
            tool: "ufw",
            place: "ufw (denies incoming by default)".into(),
            rule: "no rule allows 5353/udp".into(),
            fix: "sudo ufw allow 5353/udp".into(),
        });
    }
    if !allowed(&|l: &str| mentions_port(l, ports)) {
        out.port.push(Blocking {
            tool: "ufw",
            place: "ufw (denies incoming by default)".into(),
            rule: format!("no rule allows {}:{}/tcp", ports.0, ports.1),
            fix: format!("sudo ufw allow {}:{}/tcp", ports.0, ports.1),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORTS: (u16, u16) = (47474, 47483);

    #[test]
    fn an_nft_rule_dropping_mdns_is_named_with_the_rule_that_allows_it() {
        let mut fw = Firewall::default();
        judge_nft(
            "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tudp dport 5353 drop\n\t}\n}\n",
            PORTS,
            &mut fw,
        );
        assert_eq!(fw.mdns.len(), 1, "{fw:?}");
        assert_eq!(fw.mdns[0].rule, "udp dport 5353 drop");
        assert_eq!(fw.mdns[0].place, "table inet filter, chain input");
        assert_eq!(
            fw.mdns[0].fix,
            "sudo nft insert rule inet filter input udp dport 5353 accept"
        );
        assert!(fw.port.is_empty());
    }

    #[test]
    fn a_default_drop_without_exceptions_stops_both_and_an_exception_is_honoured() {
        let mut fw = Firewall::default();
        judge_nft(
            "table ip f {\n chain in {\n  type filter hook input priority 0; policy drop;\n  ct state established accept\n  tcp dport 47474 accept\n }\n chain out {\n  type filter hook output priority 0; policy drop;\n }\n}\n",
            PORTS,
            &mut fw,
        );
        assert_eq!(fw.mdns.len(), 1, "{fw:?}");
        assert!(fw.mdns[0].rule.starts_with("policy drop"));
        assert!(fw.port.is_empty(), "{fw:?}");
        let mut fw = Firewall::default();
        judge_iptables(
            ":INPUT DROP [0:0]\n-A INPUT -p udp -m udp --dport 5353 -j ACCEPT\n",
            PORTS,
            &mut fw,
        );
        assert!(fw.mdns.is_empty());
        assert_eq!(
            fw.port[0].fix,
            "sudo iptables -I INPUT -p tcp --dport 47474:47483 -j ACCEPT"
        );
        let mut fw = Firewall::default();
        judge_ufw(
            "Status: active\n\nTo Action From\n5353/udp ALLOW Anywhere\n",
            PORTS,
            &mut fw,
        );
        assert!(fw.mdns.is_empty());
        assert_eq!(fw.port[0].fix, "sudo ufw allow 47474:47483/tcp");
    }
}
