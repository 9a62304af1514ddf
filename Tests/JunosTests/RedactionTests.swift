import Foundation
import Junos
import Testing
import TestSupport
import XML

/// Secret redaction, checked against every configuration capture with an independent scan.
@Suite struct RedactionTests {
    /// Every secret-looking value of a capture, found with regexes over the raw text (not with
    /// the redactor's rules): crypt hashes, encrypted-password values (legacy DES crypt included),
    /// secret/key values and SNMP community names.
    struct Secrets {
        var values: Set<String> = []
        var communityNames: Set<String> = []
    }

    static func scan(_ raw: String) -> Secrets {
        func matches(_ pattern: String, group: Int = 0) -> [String] {
            let regex = try! NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators])
            return regex.matches(in: raw, range: NSRange(raw.startIndex..., in: raw)).compactMap {
                Range($0.range(at: group), in: raw).map { String(raw[$0]) }
            }
        }
        var secrets = Secrets()
        secrets.values.formUnion(matches(#"\$[1569]\$[^<"\s;]+"#))
        secrets.values.formUnion(matches(#"\$8\$[^<"\s;]+"#))
        secrets.values.formUnion(matches(#"<encrypted-password>\s*([^<\s]+)\s*</encrypted-password>"#, group: 1))
        secrets.values.formUnion(matches(#"encrypted-password\s+"([^"]+)""#, group: 1))
        for name in ["secret", "authentication-key", "simple-password", "key", "pre-shared-key", "ascii-text",
                     "authentication-password", "privacy-password"] {
            secrets.values.formUnion(matches("<\(name)>\\s*([^<\\s]+)\\s*</\(name)>", group: 1))
            secrets.values.formUnion(matches("\\s\(name)\\s+\"([^\"]+)\"", group: 1))
        }
        // NTP keys: the value, never the key number; certificate keys and any PEM private key;
        // crypt strings whose id is a scheme name.
        secrets.values.formUnion(matches(#"<value>\s*([^<\s]+)\s*</value>\s*</authentication-key>"#, group: 1))
        secrets.values.formUnion(matches(#"authentication-key\s+\S+\s+type\s+\S+\s+value\s+"?([^"\s;]+)"#, group: 1))
        secrets.values.formUnion(matches(#"-----BEGIN [A-Z ]*PRIVATE KEY-----(.*?)-----END"#, group: 1)
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty })
        secrets.values.formUnion(matches(#"\$(?:sha1|sha256|sha512|argon2i|argon2d|argon2id|pbkdf2-sha1|pbkdf2-sha256|pbkdf2-sha512|scrypt)\$[^<"\s;]+"#))
        // An SNMPv3 key in clear and unquoted: `authentication-key KEY;` or a set line's last word.
        secrets.values.formUnion(matches(#"authentication-key\s+([^"\s;{]+)[ \t]*(?:;|\n|$)"#, group: 1))
        for name in ["privacy-key", "certificate-key-string"] {
            secrets.values.formUnion(matches("<\(name)>\\s*([^<\\s]+)\\s*</\(name)>", group: 1))
            secrets.values.formUnion(matches("\\s\(name)\\s+\"([^\"]+)\"", group: 1))
        }
        // In these captures every <community> is an SNMP community (no policy-options communities).
        secrets.communityNames.formUnion(matches(#"<community>\s*<name>\s*([^<\s]+)\s*</name>"#, group: 1))
        secrets.communityNames.formUnion(matches(#"\n\s*community\s+(\S+)\s*\{"#, group: 1))
        return secrets
    }

    static let fixtures: [URL] = (try? Fixtures.files(in: "get-configuration")) ?? []

    @Test func scanFindsTheSecretsTheCatalogueNames() throws {
        var all = Secrets()
        for url in Self.fixtures {
            let s = Self.scan(try String(contentsOf: url, encoding: .utf8))
            all.values.formUnion(s.values)
            all.communityNames.formUnion(s.communityNames)
        }
        // Guards against a scan that finds nothing and so proves nothing.
        #expect(Self.fixtures.count == 12)
        #expect(all.values.contains("6ETjtWLqY222c"), "legacy DES crypt")
        #expect(all.values.contains("$9$iqPQ/CuEclFnclKMN-Hqm"), "OSPF md5 key")
        #expect(all.values.contains { $0.hasPrefix("$5$") })
        #expect(all.values.contains { $0.hasPrefix("$6$") })
        #expect(all.values.count >= 15)
        #expect(all.communityNames == ["public", "private", "hackme", "secure"])
    }

    /// Every XML capture of every RPC, not only configurations: secrets can sit in `<output>` text
    /// or a reply nobody expected to carry them.
    @Test func noCryptValueSurvivesInAnyCapture() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Fixtures.directory.path).sorted()
        var checked = 0
        for folder in folders where folder != "bundles" {
            guard let files = try? Fixtures.files(in: folder) else { continue }
            for url in files where url.pathExtension == "xml" {
                let raw = try String(contentsOf: url, encoding: .utf8)
                let values = Self.scan(raw).values
                let redacted: [UInt8]
                do {
                    redacted = try ConfigurationRedactor().redact(xml: Array(raw.utf8))
                } catch {
                    // Only a NETCONF transcript (several messages, not one document) may refuse.
                    #expect(folder == "netconf-session", "\(folder)/\(url.lastPathComponent): \(error)")
                    continue
                }
                let output = String(decoding: redacted, as: UTF8.self)
                for value in values { #expect(!output.contains(value), "\(folder)/\(url.lastPathComponent): \(value) survived") }
                checked += 1
            }
        }
        #expect(checked >= 100)
    }

    @Test("no secret survives XML redaction", arguments: fixtures)
    func xmlRedaction(url: URL) throws {
        let raw = try String(contentsOf: url, encoding: .utf8)
        let secrets = Self.scan(raw)
        let redacted = try ConfigurationRedactor().redact(xml: Array(raw.utf8))
        let output = String(decoding: redacted, as: UTF8.self)
        for value in secrets.values {
            #expect(!output.contains(value), "\(url.lastPathComponent): \(value) survived")
        }
        for name in secrets.communityNames {
            let collapsed = output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(!collapsed.contains("<name>\(name)</name>") && !collapsed.contains("<name> \(name) </name>")
                    && !collapsed.contains("community \(name) {"), "\(url.lastPathComponent): community \(name) survived")
        }
        if !secrets.values.isEmpty || !secrets.communityNames.isEmpty {
            #expect(output.contains("&lt;redacted&gt;"))
        }

        // Still XML, and still the same configuration facts (names, features) as before.
        let original = try ConfigurationFacts.parse(bytes: Array(raw.utf8), rpc: "get-configuration")
        let again = try ConfigurationFacts.parse(bytes: redacted, rpc: "get-configuration")
        #expect(again.hostName == original.hostName)
        #expect(again.features == original.features)
        #expect(again.version == original.version)
        for host in [original.hostName, original.domainName].compactMap({ $0 }) {
            #expect(output.contains(host))
        }
    }

    @Test func textFormRedaction() throws {
        let document = try XMLDocument(bytes: Fixtures.bytes("get-configuration/napalm__text-format-18.1-secrets.xml"))
        let text = document.root.text
        let secrets = Self.scan(text)
        #expect(secrets.values.count >= 3)
        let redacted = ConfigurationRedactor().redact(text: text)
        for value in secrets.values { #expect(!redacted.contains(value), "\(value) survived") }
        #expect(!redacted.contains("community secure"))
        #expect(redacted.contains("community \"<redacted>\" {"))
        #expect(redacted.contains("encrypted-password \"<redacted>\";"))
        // Non-secrets and the list words next to `password` are kept.
        #expect(redacted.contains("authentication-order [ password radius ];"))
        #expect(redacted.contains("host-name some-switch;"))
        #expect(redacted.contains("server 10.17.0.1;"))
        // Everything else is byte for byte the same: same line count, same facts.
        #expect(redacted.split(separator: "\n").count == text.split(separator: "\n").count)
        #expect(ConfigurationFacts(text: redacted) == ConfigurationFacts(text: text))
    }

    @Test func setFormRedaction() {
        let set = """
        set version 18.1
        set system host-name edge1
        set system root-authentication encrypted-password "$6$abc$DEF/ghi."
        set system login user ops authentication ssh-rsa "ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB ops@host"
        set system radius-server 10.0.0.1 secret "$9$XyZ"
        set system tacplus-server 10.0.0.2 secret plaintextsecret
        set snmp community n0tpublic authorization read-only
        set policy-options community TRANSIT members 65000:100
        set protocols ospf area 0.0.0.0 interface ge-0/0/0.0 authentication md5 1 key "$9$md5key"
        set security ike policy P pre-shared-key ascii-text "$9$psk"
        set authentication-key-chains key-chain KC key 0 secret "$9$chain"
        set snmp v3 usm local-engine user u1 authentication-sha authentication-password "$9$authpw"
        """
        let redacted = ConfigurationRedactor().redact(text: set)
        for secret in ["$6$abc$DEF/ghi.", "$9$XyZ", "plaintextsecret", "n0tpublic", "$9$md5key", "$9$psk", "$9$chain", "$9$authpw"] {
            #expect(!redacted.contains(secret), "\(secret) survived")
        }
        #expect(redacted.contains("ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB ops@host"))
        #expect(redacted.contains("set policy-options community TRANSIT members 65000:100"))
        #expect(redacted.contains("set snmp community \"<redacted>\" authorization read-only"))
        #expect(redacted.contains("key-chain KC key 0 secret \"<redacted>\""))
        #expect(redacted.contains("set system host-name edge1"))
    }

    @Test func sshPublicKeysAndInterfaceNamesSurvive() throws {
        let raw = try Fixtures.bytes("get-configuration/napalm__login-users-ssh-keys-fragment.xml")
        let output = String(decoding: try ConfigurationRedactor().redact(xml: raw), as: UTF8.self)
        #expect(!output.contains("$1$waUQAEpO$kSmdRL84F5sCoWKHZ8/kU1"))
        #expect(output.contains("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC4pFn+shPwTb2yELO4L7NtQrKOJXNeCl1jel9STXVaGnRAnuc2PXl35vn"))
        #expect(output.contains("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFAvVeQxnECAx"))
        #expect(output.contains("dummy-test"))

        let olive = try Fixtures.bytes("get-configuration/jsnapy__olive-15.2I-descrypt-inactive.xml")
        let oliveOut = String(decoding: try ConfigurationRedactor().redact(xml: olive), as: UTF8.self)
        #expect(oliveOut.contains("<name>em0.0</name>"))
        #expect(oliveOut.contains("<name>10.209.16.206</name>"))
        #expect(!oliveOut.contains("6ETjtWLqY222c"))
    }

    @Test func redactsInsideAnyReplyAndAttributes() throws {
        // A configuration nested in another document (as in a bundle), plus a hash in an attribute.
        let xml = """
        <bundle><item name="x" note="$9$attrSecret"><rpc-reply><configuration>
        <system><host-name>r1</host-name><root-authentication><encrypted-password>abcDEFghiJKLm</encrypted-password></root-authentication></system>
        <snmp><community><name>c0mm</name></community></snmp>
        <security><ike><policy><name>p</name><pre-shared-key><hexadecimal>0a1b2c3d</hexadecimal></pre-shared-key></policy></ike></security>
        </configuration></rpc-reply></item>
        <configuration-text>system { radius-server 1.2.3.4 { secret "$9$inText"; } }</configuration-text></bundle>
        """
        let out = String(decoding: try ConfigurationRedactor().redact(xml: Array(xml.utf8)), as: UTF8.self)
        for secret in ["$9$attrSecret", "abcDEFghiJKLm", "c0mm", "0a1b2c3d", "$9$inText"] {
            #expect(!out.contains(secret), "\(secret) survived")
        }
        #expect(out.contains("<host-name>r1</host-name>"))
        #expect(try XMLDocument(string: out).root.name == "bundle")
    }

    @Test func extraKeywordsAndPatterns() throws {
        let redactor = try ConfigurationRedactor(extraKeywords: ["location"], extraPatterns: [#"AKIA[0-9A-Z]{8}"#])
        let xml = "<configuration><snmp><location>Rack 12 cage 4</location><description>key AKIA12345678 here</description></snmp></configuration>"
        let out = String(decoding: try redactor.redact(xml: Array(xml.utf8)), as: UTF8.self)
        #expect(!out.contains("Rack 12"))
        #expect(!out.contains("AKIA12345678"))
        #expect(out.contains("key &lt;redacted&gt; here"))
        #expect(throws: (any Error).self) { try ConfigurationRedactor(extraPatterns: ["(unclosed"]) }
        // The default redactor leaves those alone.
        let plain = String(decoding: try ConfigurationRedactor().redact(xml: Array(xml.utf8)), as: UTF8.self)
        #expect(plain.contains("Rack 12 cage 4"))
    }

    /// Extra statement paths, in XML, text and set forms; the default redactor keeps those values.
    /// A list entry's name where text writes no element for the entry: `routing-instances NAME`.
    @Test func extraPathToTheNameOfAnUnwrittenListEntry() throws {
        let redactor = try ConfigurationRedactor(extraPaths: ["routing-instances/instance/name"])
        let xml = "<configuration><routing-instances><instance><name>CUST-ACME</name><instance-type>vrf</instance-type></instance></routing-instances></configuration>"
        let out = try Self.redactXML(xml, redactor)
        #expect(!out.contains("CUST-ACME") && out.contains("<instance-type>vrf</instance-type>"), "\(out)")
        let text = redactor.redact(text: "routing-instances {\n    CUST-ACME {\n        instance-type vrf;\n    }\n}\n")
        #expect(!text.contains("CUST-ACME") && text.contains("instance-type vrf;"), "\(text)")
        let set = redactor.redact(text: "set routing-instances CUST-ACME instance-type vrf\n")
        #expect(!set.contains("CUST-ACME") && set.contains("instance-type vrf"), "\(set)")
        // Without the rule, names of instances stay.
        #expect(ConfigurationRedactor().redact(text: "set routing-instances CUST-ACME instance-type vrf\n").contains("CUST-ACME"))
    }

    @Test func extraPaths() throws {
        let redactor = try ConfigurationRedactor(extraPaths: ["interfaces/interface/description", "snmp/contact",
                                                              "policy-options/prefix-list/name"])
        #expect(redactor.secretPaths.count == ConfigurationRedactor.defaultSecretPaths.count + 3)
        let xml = """
        <configuration><interfaces><interface><name>ge-0/0/0</name><description>cust-acme-4411</description>
          <unit><name>0</name><description>unit-note</description></unit></interface></interfaces>
          <groups><name>G</name><snmp><contact>noc-desk-7</contact></snmp></groups>
          <policy-options><prefix-list><name>ACME-NETS</name><prefix-list-item><name>192.0.2.0/24</name></prefix-list-item></prefix-list></policy-options>
        </configuration>
        """
        let out = try Self.redactXML(xml, redactor)
        for secret in ["cust-acme-4411", "noc-desk-7", "ACME-NETS"] { #expect(!out.contains(secret), "\(secret) survived") }
        #expect(out.contains("<name>ge-0/0/0</name>") && out.contains("<description>unit-note</description>"))
        #expect(out.contains("<name>192.0.2.0/24</name>"))
        let plain = try Self.redactXML(xml)
        #expect(plain.contains("cust-acme-4411") && plain.contains("noc-desk-7") && plain.contains("ACME-NETS"))

        let text = """
        groups {
            G {
                snmp {
                    contact noc-desk-7;
                }
            }
        }
        interfaces {
            ge-0/0/0 {
                description "cust-acme-4411";
                unit 0 {
                    description unit-note;
                }
            }
        }
        policy-options {
            prefix-list ACME-NETS {
                192.0.2.0/24;
            }
        }
        """
        let redactedText = redactor.redact(text: text)
        for secret in ["cust-acme-4411", "noc-desk-7", "ACME-NETS"] { #expect(!redactedText.contains(secret), "\(secret) survived") }
        #expect(redactedText.contains("description unit-note;") && redactedText.contains("ge-0/0/0 {"))
        #expect(redactedText.contains("prefix-list \"<redacted>\" {") && redactedText.contains("192.0.2.0/24;"))

        let set = """
        set interfaces ge-0/0/0 description "cust-acme-4411"
        set interfaces ge-0/0/0 unit 0 description unit-note
        set groups G snmp contact noc-desk-7
        set policy-options prefix-list ACME-NETS 192.0.2.0/24
        """
        let redactedSet = redactor.redact(text: set)
        for secret in ["cust-acme-4411", "noc-desk-7", "ACME-NETS"] { #expect(!redactedSet.contains(secret), "\(secret) survived") }
        #expect(redactedSet.contains("set interfaces ge-0/0/0 unit 0 description unit-note"))

        for bad in ["", "snmp//name", "/snmp/contact", "location", "interfaces/<*>/description", "a b/c"] {
            #expect(throws: RedactionRuleError.self, "\(bad)") { try SecretPath(bad) }
        }
        #expect(throws: RedactionRuleError.self) { try ConfigurationRedactor(extraPaths: ["snmp/"]) }
    }

    @Test func originalDocumentIsNotChanged() throws {
        let bytes = try Fixtures.bytes("get-configuration/ksator__ex4300-15.1R5-sha256crypt.xml")
        let document = try XMLDocument(bytes: bytes)
        let before = document.serialized()
        _ = ConfigurationRedactor().redact(document)
        #expect(document.serialized() == before)
    }

    static func redactXML(_ xml: String, _ redactor: ConfigurationRedactor = ConfigurationRedactor()) throws -> String {
        String(decoding: try redactor.redact(xml: Array(xml.utf8)), as: UTF8.self)
    }

    /// `command show configuration` answers with CLI text in `<configuration-output>`.
    @Test func configurationOutputIsRedactedAsText() throws {
        let xml = """
        <rpc-reply><configuration-information><configuration-output>
        system {
            root-authentication {
                encrypted-password "abcDEFghiJKLm"; ## SECRET-DATA
            }
        }
        snmp {
            community hackme {
                authorization read-only;
            }
        }
        </configuration-output></configuration-information></rpc-reply>
        """
        let out = try Self.redactXML(xml)
        #expect(!out.contains("abcDEFghiJKLm"))
        #expect(!out.contains("hackme"))
        #expect(out.contains("encrypted-password \"&lt;redacted&gt;\"; ## SECRET-DATA"))
        #expect(out.contains("community \"&lt;redacted&gt;\" {"))

        // `show configuration | compare rollback 1`: paths in `[edit …]` lines, `+`/`-` marks.
        let diff = """
        <rpc-reply><configuration-information><configuration-output>
        [edit system]
        -  host-name old;
        +  host-name new;
        [edit snmp]
        +   community hackme {
        +       authorization read-only;
        +   }
        -   community public;
        [edit system root-authentication]
        -   encrypted-password "abcDEFghiJKLm"; ## SECRET-DATA
        </configuration-output></configuration-information></rpc-reply>
        """
        let diffOut = try Self.redactXML(diff)
        for secret in ["hackme", "public", "abcDEFghiJKLm"] { #expect(!diffOut.contains(secret), "\(secret) survived") }
        // A community named in the `[edit …]` header itself.
        let headerDiff = """
        <rpc-reply><configuration-information><configuration-output>
        [edit snmp community headersecret]
        -    authorization read-only;
        +    authorization read-write;
        </configuration-output></configuration-information></rpc-reply>
        """
        let headerOut = try Self.redactXML(headerDiff)
        #expect(!headerOut.contains("headersecret"), "\(headerOut)")
        #expect(headerOut.contains("[edit snmp community"), "\(headerOut)")
        #expect(headerOut.contains("+    authorization read-write;"))
        #expect(diffOut.contains("+   community \"&lt;redacted&gt;\" {"))
        #expect(diffOut.contains("[edit snmp]") && diffOut.contains("+  host-name new;"))
    }

    /// A trap-group name travels as the community of the traps, and an RMON event names a community.
    @Test func snmpTrapGroupsAndRmonCommunitiesInEveryForm() throws {
        let xml = """
        <configuration><snmp>
          <trap-group><name>tg-secret</name><targets><name>192.0.2.9</name></targets></trap-group>
          <rmon><event><name>1</name><community>rmon-secret</community><type>log-and-trap</type></event></rmon>
        </snmp></configuration>
        """
        let out = try Self.redactXML(xml)
        #expect(!out.contains("tg-secret") && !out.contains("rmon-secret"))
        #expect(out.contains("<name>192.0.2.9</name>") && out.contains("<name>1</name>"))
        #expect(out.contains("<type>log-and-trap</type>"))

        let text = """
        snmp {
            trap-group tg-secret {
                targets {
                    192.0.2.9;
                }
            }
            rmon {
                event 1 {
                    community rmon-secret;
                    type log-and-trap;
                }
            }
        }
        """
        let redactedText = ConfigurationRedactor().redact(text: text)
        #expect(!redactedText.contains("tg-secret") && !redactedText.contains("rmon-secret"))
        #expect(redactedText.contains("trap-group \"<redacted>\" {"))
        #expect(redactedText.contains("community \"<redacted>\";"))
        #expect(redactedText.contains("event 1 {") && redactedText.contains("192.0.2.9;"))

        let set = """
        set snmp trap-group tg-secret targets 192.0.2.9
        set snmp rmon event 1 community rmon-secret
        set snmp rmon event 1 type log-and-trap
        """
        let redactedSet = ConfigurationRedactor().redact(text: set)
        #expect(!redactedSet.contains("tg-secret") && !redactedSet.contains("rmon-secret"))
        #expect(redactedSet.contains("set snmp trap-group \"<redacted>\" targets 192.0.2.9"))
        #expect(redactedSet.contains("set snmp rmon event 1 community \"<redacted>\""))
    }

    /// `inactive:` and `protect:` prefix a statement; they must not hide what the statement is.
    @Test func prefixedStatementsAreRedacted() {
        let text = """
        snmp {
            inactive: community public {
                authorization read-only;
            }
            protect: community private;
            inactive: trap-group tg-secret;
        }
        protect: system {
            inactive: root-authentication {
                encrypted-password "abcDEFghiJKLm";
            }
        }
        """
        let redacted = ConfigurationRedactor().redact(text: text)
        for secret in ["public", "private", "tg-secret", "abcDEFghiJKLm"] { #expect(!redacted.contains(secret), "\(secret) survived") }
        #expect(redacted.contains("inactive: community \"<redacted>\" {"))
        #expect(redacted.contains("protect: community \"<redacted>\";"))
    }

    /// Junos writes `## SECRET-DATA` after secret leaves; `#` after a blank starts a comment, so
    /// the next statement is read as itself (here an SNMP community).
    @Test func trailingHashCommentsEndAtTheLineEnd() {
        let text = """
        system {
            root-authentication {
                encrypted-password "$6$abc$DEF"; ## SECRET-DATA
            }
            login {
                message "call #42 # not a comment";
            }
        }
        snmp {
            location "rack #1"; ## placed by ops
            community hackme {
                authorization read-only;
            }
        }
        """
        let redacted = ConfigurationRedactor().redact(text: text)
        #expect(!redacted.contains("hackme"))
        #expect(redacted.contains("community \"<redacted>\" {"))
        #expect(redacted.contains("## SECRET-DATA") && redacted.contains("## placed by ops"))
        #expect(redacted.contains("message \"call #42 # not a comment\";"))
        #expect(redacted.contains("location \"rack #1\";"))
    }

    @Test func licenseKeysInXMLAndText() throws {
        let xml = """
        <configuration><system><license><keys>
          <key><name>JUNOS123456 aeaqec agaia3 aqbwrq zejagm</name></key>
        </keys></license></system></configuration>
        """
        let out = try Self.redactXML(xml)
        #expect(!out.contains("JUNOS123456") && !out.contains("aeaqec"))
        #expect(out.contains("<key><name>&lt;redacted&gt;</name></key>"))
        let text = "system {\n    license {\n        keys {\n            key \"JUNOS123456 aeaqec agaia3\";\n        }\n    }\n}\n"
        let redactedText = ConfigurationRedactor().redact(text: text)
        #expect(!redactedText.contains("JUNOS123456"))
        #expect(redactedText.contains("key \"<redacted>\";"))
    }

    /// `scp://user:password@host/dir` (archive sites, `refresh-from`, event-options uploads): the
    /// password goes, the user, host and path stay.
    @Test func passwordsInURLs() throws {
        let xml = """
        <configuration xmlns:junos="http://xml.juniper.net/junos/*/junos">
          <system><archival><configuration><archive-sites><name>scp://backup:Sup3rS3cret@192.0.2.5/var/archive</name></archive-sites>
            </configuration></archival>
            <scripts><op><file><name>x.slax</name><source>ftp://ops:hunter2@files.example.net/x.slax</source></file></op></scripts></system>
          <event-options><destinations><destination><name>d</name><archive-sites><name>https://up:pa@ss:word@example.net/in</name></archive-sites></destination></destinations></event-options>
          <note junos:origin="ftp://anon:attrsecret@192.0.2.6"/>
          <system><ntp><server><name>http://192.0.2.7:8080/path</name></server></ntp></system>
        </configuration>
        """
        let out = try Self.redactXML(xml)
        for secret in ["Sup3rS3cret", "hunter2", "pa@ss:word", "attrsecret"] { #expect(!out.contains(secret), "\(secret) survived") }
        #expect(out.contains("scp://backup:&lt;redacted&gt;@192.0.2.5/var/archive"))
        #expect(out.contains("ftp://ops:&lt;redacted&gt;@files.example.net/x.slax"))
        #expect(out.contains("https://up:&lt;redacted&gt;@example.net/in"))
        #expect(out.contains("ftp://anon:&lt;redacted&gt;@192.0.2.6"))
        #expect(out.contains("http://192.0.2.7:8080/path"), "a port is not a password")
        // Delimiters of configuration text inside the password do not end the URL.
        let odd = try Self.redactXML("<configuration><system><archival><configuration><archive-sites><name>scp://u:Ab;c{d}&lt;e@h/x</name></archive-sites></configuration></archival></system></configuration>")
        #expect(!odd.contains("Ab;c"), "\(odd)")
        #expect(odd.contains("scp://u:&lt;redacted&gt;@h/x"), "\(odd)")

        let text = """
        system {
            archival {
                configuration {
                    archive-sites {
                        "scp://backup:Sup3rS3cret@192.0.2.5/var/archive";
                        ftp://ops:hunter2@files.example.net/;
                    }
                }
            }
        }
        """
        let redacted = ConfigurationRedactor().redact(text: text)
        #expect(!redacted.contains("Sup3rS3cret") && !redacted.contains("hunter2"))
        #expect(redacted.contains("\"scp://backup:<redacted>@192.0.2.5/var/archive\";"))
        #expect(redacted.contains("ftp://ops:<redacted>@files.example.net/;"))
        let set = "set system archival configuration archive-sites \"scp://backup:Sup3rS3cret@192.0.2.5/var\" password x\n"
        #expect(!ConfigurationRedactor().redact(text: set).contains("Sup3rS3cret"))
    }

    @Test func cryptLikeTokens() {
        #expect(ConfigurationRedactor.isCryptLike("$1$kPU..$w.4FGRAGanJ8U4Yq6sbj7."))
        #expect(ConfigurationRedactor.isCryptLike("$8$aes256-gcm$hmac-sha2-256$100$abc"))
        #expect(!ConfigurationRedactor.isCryptLike("$"))
        #expect(!ConfigurationRedactor.isCryptLike("$$"))
        #expect(!ConfigurationRedactor.isCryptLike("${node}"))
        #expect(!ConfigurationRedactor.isCryptLike("US$5"))
        #expect(ConfigurationRedactor().redactTokens(in: "price $5 and ${node}") == "price $5 and ${node}")
    }

    /// Junos comments after a statement are `## ...`; a lone `#` after a blank begins a value.
    @Test func aValueStartingWithHashIsNotAComment() {
        let redactor = ConfigurationRedactor()
        let set = redactor.redact(text: "set snmp community #hashsecret authorization read-only\n")
        #expect(!set.contains("hashsecret"), "\(set)")
        let curly = redactor.redact(text: "snmp {\n    community #hashsecret {\n        authorization read-only;\n    }\n}\n")
        #expect(!curly.contains("hashsecret"), "\(curly)")
        let comment = redactor.redact(text: "system {\n    encrypted-password \"abcDEFghiJKLm\"; ## SECRET-DATA\n}\n")
        #expect(comment.contains("## SECRET-DATA") && !comment.contains("abcDEFghiJKLm"))
    }

    /// `##x` and `/*x` after a keyword are values: read as comments they were kept as written and
    /// `/*` hid everything up to a `*/` that never came. Annotations and Junos's `##` comments stay.
    @Test func hashAndSlashStarValuesAreRedacted() {
        let redactor = ConfigurationRedactor()
        let curly = redactor.redact(text: """
        ## Last changed: 2024-01-01 10:00:00 UTC
        /* annotation: snmp */
        snmp {
            community ##pub1 { authorization read-only; } community pub2; community /*pub3; community pub4;
        }
        system {
            root-authentication {
                encrypted-password "abcDEFghiJKLm"; ## SECRET-DATA
            }
        }
        """)
        for secret in ["pub1", "pub2", "pub3", "pub4", "abcDEFghiJKLm"] { #expect(!curly.contains(secret), "\(secret) survived: \(curly)") }
        #expect(curly.contains("community \"<redacted>\" { authorization read-only; }"), "\(curly)")
        #expect(curly.contains("## Last changed: 2024-01-01 10:00:00 UTC\n/* annotation: snmp */\n"))
        #expect(curly.contains("encrypted-password \"<redacted>\"; ## SECRET-DATA"))
        let set = redactor.redact(text: """
        set snmp community ##pub5 authorization read-only
        set snmp community pub6 authorization read-only
        set snmp community /*pub7 authorization read-only
        set system root-authentication encrypted-password "abcDEFghiJKLm" ## SECRET-DATA
        set snmp community pub8 authorization read-only
        """)
        for secret in ["pub5", "pub6", "pub7", "pub8", "abcDEFghiJKLm"] { #expect(!set.contains(secret), "\(secret) survived: \(set)") }
        #expect(set.contains("set snmp community \"<redacted>\" authorization read-only\nset snmp community \"<redacted>\""))
        #expect(set.contains("encrypted-password \"<redacted>\" ## SECRET-DATA"))
    }

    /// A quote in a URL password does not end the URL: the password goes up to the last `@`
    /// before a blank, in XML values and in (quoted) text.
    @Test func urlPasswordsHoldingQuotes() throws {
        let xml = try Self.redactXML("""
        <configuration><system><archival><configuration>
          <archive-sites><name>ftp://bob:it's9Secret@10.1.1.1/cfg</name></archive-sites>
          <archive-sites><name>ftp://amy:say"hi"9@10.1.1.2/cfg</name></archive-sites>
        </configuration></archival></system><note x="scp://eve:o'k9@10.1.1.3/y"/></configuration>
        """)
        for secret in ["it's9Secret", "s9Secret", "hi\"9", "hi&quot;9", "o'k9", "o&apos;k9", "k9@"] { #expect(!xml.contains(secret), "\(secret) survived: \(xml)") }
        #expect(xml.contains("ftp://bob:&lt;redacted&gt;@10.1.1.1/cfg"), "\(xml)")
        #expect(xml.contains("ftp://amy:&lt;redacted&gt;@10.1.1.2/cfg"), "\(xml)")
        let text = ConfigurationRedactor().redact(text: """
        system {
            archival {
                configuration {
                    archive-sites {
                        "ftp://bob:it's9Secret@10.1.1.1/cfg";
                        "ftp://amy:say\\"hi\\"9@10.1.1.2/cfg" password x;
                    }
                }
            }
        }
        """)
        for secret in ["it's9Secret", "s9Secret", "hi\\\"9"] { #expect(!text.contains(secret), "\(secret) survived: \(text)") }
        #expect(text.contains("\"ftp://bob:<redacted>@10.1.1.1/cfg\";"), "\(text)")
        #expect(text.contains("\"ftp://amy:<redacted>@10.1.1.2/cfg\" password \"<redacted>\";"), "\(text)")
    }

    /// `show | compare` marks (de)activated statements with `!`; the statement is still what it says.
    @Test func deactivatedStatementsInADiffAreRedacted() throws {
        let diff = """
        [edit snmp]
        !    inactive: community public13 { ... }
        !    inactive: trap-group tg13 { ... }
        [edit system root-authentication]
        !    inactive: encrypted-password "abcDEFghiJKLm";
        """
        let redacted = ConfigurationRedactor().redact(text: diff)
        for secret in ["public13", "tg13", "abcDEFghiJKLm"] { #expect(!redacted.contains(secret), "\(secret) survived: \(redacted)") }
        #expect(redacted.contains("!    inactive: community \"<redacted>\" { ... }"), "\(redacted)")
        let xml = try Self.redactXML("<rpc-reply><configuration-information><configuration-output>\n\(diff)\n</configuration-output></configuration-information></rpc-reply>")
        for secret in ["public13", "tg13", "abcDEFghiJKLm"] { #expect(!xml.contains(secret), "\(secret) survived: \(xml)") }
    }

    /// A keyword rule whose value is a list redacts every word of it, in text and set form as in
    /// XML (one leaf per word); list words after a keyword that is not secret are kept, secret
    /// keyword or not (`authentication-order [ password radius ]`).
    @Test func keywordListsAreRedactedWhole() throws {
        let redactor = try ConfigurationRedactor(extraKeywords: ["members"])
        let text = redactor.redact(text: """
        system {
            authentication-order [ password radius ];
        }
        policy-options {
            community C1 members [ m1secret m2secret ];
            community C3 members m5secret;
        }
        """)
        for secret in ["m1secret", "m2secret", "m5secret"] { #expect(!text.contains(secret), "\(secret) survived: \(text)") }
        #expect(text.contains("community C1 members [ \"<redacted>\" \"<redacted>\" ];"), "\(text)")
        #expect(text.contains("authentication-order [ password radius ];"), "\(text)")
        let set = redactor.redact(text: """
        set system authentication-order [ password radius ]
        set policy-options community C2 members [ m3secret m4secret ]
        set system tacplus-server 10.0.0.2 secret plaintextsecret
        """)
        for secret in ["m3secret", "m4secret", "plaintextsecret"] { #expect(!set.contains(secret), "\(secret) survived: \(set)") }
        #expect(set.contains("set policy-options community C2 members [ \"<redacted>\" \"<redacted>\" ]"), "\(set)")
        #expect(set.contains("set system authentication-order [ password radius ]"), "\(set)")
        // The default rules keep both lists.
        let plain = ConfigurationRedactor().redact(text: "set system authentication-order [ password radius ]\nset policy-options community C2 members [ m3 m4 ]\n")
        #expect(plain.contains("authentication-order [ password radius ]") && plain.contains("members [ m3 m4 ]"), "\(plain)")
        let xml = try Self.redactXML("<configuration><policy-options><community><name>C1</name><members>m1secret</members><members>m2secret</members></community></policy-options></configuration>", redactor)
        #expect(!xml.contains("m1secret") && !xml.contains("m2secret") && xml.contains("<name>C1</name>"), "\(xml)")
    }

    /// SNMP proxy communities (the proxied device's community), IS-IS hello keys and PPP PAP
    /// local passwords, in XML, text and set forms.
    @Test func proxyCommunitiesAndHelloKeysInEveryForm() throws {
        let xml = try Self.redactXML("""
        <configuration><snmp>
          <proxy><name>P1</name><device-name>d1</device-name><version-v2c><snmp-community>proxyc2</snmp-community></version-v2c></proxy>
          <proxy><name>P2</name><device-name>d2</device-name><version-v1><snmp-community>proxyc1</snmp-community></version-v1></proxy>
        </snmp><protocols><isis><interface><name>ge-0/0/0.0</name><level><name>2</name>
          <hello-authentication-key>hellokey9</hello-authentication-key><hello-authentication-type>md5</hello-authentication-type>
        </level></interface></isis></protocols>
        <interfaces><interface><name>so-0/0/0</name><ppp-options><pap><local-name>me</local-name><local-password>papclear9</local-password></pap></ppp-options></interface></interfaces>
        </configuration>
        """)
        for secret in ["proxyc2", "proxyc1", "hellokey9", "papclear9"] { #expect(!xml.contains(secret), "\(secret) survived: \(xml)") }
        #expect(xml.contains("<name>P1</name>") && xml.contains("<device-name>d2</device-name>") && xml.contains("<local-name>me</local-name>"))
        let text = ConfigurationRedactor().redact(text: """
        snmp {
            proxy P1 {
                device-name d1;
                version-v2c {
                    snmp-community proxyc2;
                }
            }
            proxy P2 {
                version-v1 {
                    snmp-community proxyc1;
                }
            }
        }
        protocols {
            isis {
                interface ge-0/0/0.0 {
                    level 2 {
                        hello-authentication-key hellokey9;
                        hello-authentication-type md5;
                    }
                }
            }
        }
        """)
        for secret in ["proxyc2", "proxyc1", "hellokey9"] { #expect(!text.contains(secret), "\(secret) survived: \(text)") }
        #expect(text.contains("proxy P1 {") && text.contains("device-name d1;") && text.contains("hello-authentication-type md5;"))
        let set = ConfigurationRedactor().redact(text: """
        set snmp proxy P1 version-v2c snmp-community proxyc2
        set snmp proxy P2 version-v1 snmp-community proxyc1
        set protocols isis interface ge-0/0/0.0 level 2 hello-authentication-key hellokey9
        set interfaces so-0/0/0 ppp-options pap local-password papclear9
        """)
        for secret in ["proxyc2", "proxyc1", "hellokey9", "papclear9"] { #expect(!set.contains(secret), "\(secret) survived: \(set)") }
        #expect(set.contains("set snmp proxy P1 version-v2c snmp-community \"<redacted>\""), "\(set)")
    }

    /// Comments, processing instructions and text beside child elements are redacted too.
    @Test func commentsProcessingInstructionsAndMixedTextInXML() throws {
        let xml = """
        <rpc-reply><configuration><!-- $9$COMMENTINNER --><system>tail $9$MIXEDTEXT<host-name>r1<!-- ftp://u:leafpw9@h/x --></host-name>
        <?pi $9$PITEXT?><root-authentication><encrypted-password>mixedDES9<undocumented/></encrypted-password></root-authentication>
        </system></configuration><configuration-text>snmp { community textpub; }<x/>snmp { community textpub2; }</configuration-text></rpc-reply>
        """
        let out = try Self.redactXML(xml)
        for secret in ["COMMENTINNER", "MIXEDTEXT", "leafpw9", "PITEXT", "mixedDES9", "textpub"] { #expect(!out.contains(secret), "\(secret) survived: \(out)") }
        #expect(out.contains("<configuration><!-- <redacted> --><system>tail &lt;redacted&gt;<host-name>r1<!-- ftp://u:<redacted>@h/x -->"), "\(out)")
        #expect(out.contains("<host-name>r1<!--") && out.contains("<?pi "), "\(out)")
        #expect(try XMLDocument(string: out).root.name == "rpc-reply")
        let document = ConfigurationRedactor().redact(try XMLDocument(string: xml))
        #expect(String(decoding: document.serialized(), as: UTF8.self) == out)
    }

    /// A top `[edit]` header (configuration mode's banner) before `set` lines, and an
    /// `[edit system]` header before them: each `set` line is still read as one statement.
    @Test func setLinesBelowAnEditHeader() {
        let top = ConfigurationRedactor().redact(text: """
        [edit]
        set system tacplus-server 10.0.0.2 secret plaintextsecret
        set snmp community n0tpublic authorization read-only
        set system host-name edge1
        """)
        for secret in ["plaintextsecret", "n0tpublic"] { #expect(!top.contains(secret), "\(secret) survived: \(top)") }
        #expect(top.contains("[edit]\nset system tacplus-server 10.0.0.2 secret \"<redacted>\"\n"), "\(top)")
        let below = ConfigurationRedactor().redact(text: """
        [edit system]
        set tacplus-server 10.0.0.2 secret plaintextsecret
        set system radius-server 10.0.0.3 secret plaintextsecret2
        set host-name edge1
        """)
        for secret in ["plaintextsecret", "plaintextsecret2"] { #expect(!below.contains(secret), "\(secret) survived: \(below)") }
        // A diff below `[edit]` still reads its blocks.
        let diff = ConfigurationRedactor().redact(text: "[edit]\n+  snmp {\n+      community hackme;\n+  }\n")
        #expect(!diff.contains("hackme") && diff.contains("+      community \"<redacted>\";"), "\(diff)")
    }

    /// `interfaces/interface/description` is an interface's description: not an interface range's,
    /// in text as in XML.
    @Test func interfaceRangesAreNotInterfaces() throws {
        let redactor = try ConfigurationRedactor(extraPaths: ["interfaces/interface/description"])
        let xml = try Self.redactXML("""
        <configuration><interfaces>
          <interface-range><name>R</name><member><name>ge-0/0/1</name></member><description>range-note</description></interface-range>
          <interface><name>ge-0/0/0</name><description>cust-acme</description></interface>
        </interfaces></configuration>
        """, redactor)
        #expect(xml.contains("range-note") && !xml.contains("cust-acme"), "\(xml)")
        let text = redactor.redact(text: """
        interfaces {
            interface-range R {
                member ge-0/0/1;
                description range-note;
            }
            ge-0/0/0 {
                description cust-acme;
            }
        }
        """)
        #expect(text.contains("description range-note;") && !text.contains("cust-acme"), "\(text)")
        let set = redactor.redact(text: "set interfaces interface-range R description range-note\nset interfaces ge-0/0/0 description cust-acme\n")
        #expect(set.contains("description range-note") && !set.contains("cust-acme"), "\(set)")
    }

    // MARK: Secrets Junos may show in clear (issue 10)

    static let pemKey = """
    -----BEGIN RSA PRIVATE KEY-----
    MIIEowIBAAKCAQEAxq7TESTKEYmaterialA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6
    Q7r8S9t0U1v2W3x4Y5z6cleartextPRIVATEkeyBODY0123456789abcdefghijklmn
    -----END RSA PRIVATE KEY-----
    """

    /// One configuration with every kind in curly text; the same in set form and in XML below.
    static let clearSecretsText = """
    system {
        root-authentication {
            encrypted-password "$sha1$20000$Ab12Cd34$EfGh5678IjKl9012MnOp3456QrSt";
        }
        login {
            user ops {
                authentication {
                    encrypted-password "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
                }
            }
            user auto {
                authentication {
                    encrypted-password "$pbkdf2-sha256$29000$N2d5MO$QdeMs8.OJxnTP8ZtJw";
                }
            }
        }
        ntp {
            authentication-key 7 type md5 value ntpClearSecret77;
            authentication-key 8 type sha256 value "$9$ntpEncoded8Value";
            trusted-key [ 7 8 ];
        }
    }
    security {
        certificates {
            local {
                router-cert {
                    certificate-key-string "\(pemKey)";
                }
            }
        }
    }
    snmp {
        v3 {
            usm {
                local-engine {
                    user monitor {
                        authentication-sha {
                            authentication-key snmpAuthClearKey;
                        }
                        privacy-aes128 {
                            privacy-key "snmpPrivClearKey";
                        }
                    }
                }
            }
        }
    }
    """

    static let clearSecretsSet = """
    set system root-authentication encrypted-password "$sha1$20000$Ab12Cd34$EfGh5678IjKl9012MnOp3456QrSt"
    set system login user ops authentication encrypted-password "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
    set system login user auto authentication encrypted-password "$pbkdf2-sha256$29000$N2d5MO$QdeMs8.OJxnTP8ZtJw"
    set system ntp authentication-key 7 type md5 value ntpClearSecret77
    set system ntp authentication-key 8 type sha256 value "$9$ntpEncoded8Value"
    set system ntp trusted-key 7
    set security certificates local router-cert certificate-key-string "\(pemKey)"
    set snmp v3 usm local-engine user monitor authentication-sha authentication-key snmpAuthClearKey
    set snmp v3 usm local-engine user monitor privacy-aes128 privacy-key "snmpPrivClearKey"
    """

    static let clearSecretsXML = """
    <rpc-reply><configuration>
    <system>
      <root-authentication><encrypted-password>$sha1$20000$Ab12Cd34$EfGh5678IjKl9012MnOp3456QrSt</encrypted-password></root-authentication>
      <login>
        <user><name>ops</name><authentication><encrypted-password>$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo</encrypted-password></authentication></user>
        <user><name>auto</name><authentication><encrypted-password>$pbkdf2-sha256$29000$N2d5MO$QdeMs8.OJxnTP8ZtJw</encrypted-password></authentication></user>
      </login>
      <ntp>
        <authentication-key><name>7</name><type>md5</type><value>ntpClearSecret77</value></authentication-key>
        <authentication-key><name>8</name><type>sha256</type><value>$9$ntpEncoded8Value</value></authentication-key>
        <trusted-key>7</trusted-key>
      </ntp>
    </system>
    <security><certificates><local><name>router-cert</name><certificate-key-string>\(pemKey)</certificate-key-string></local></certificates></security>
    <snmp><v3><usm><local-engine><user><name>monitor</name>
      <authentication-sha><authentication-key>snmpAuthClearKey</authentication-key></authentication-sha>
      <privacy-aes128><privacy-key>snmpPrivClearKey</privacy-key></privacy-aes128>
    </user></local-engine></usm></v3></snmp>
    <system><syslog><file><name>messages</name></file></syslog></system>
    </configuration>
    <output>pasted key:
    \(pemKey)
    done</output>
    </rpc-reply>
    """

    /// The scan must find every planted secret, or the checks below prove nothing.
    static let planted = ["$sha1$20000$Ab12Cd34$EfGh5678IjKl9012MnOp3456QrSt",
                          "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
                          "$pbkdf2-sha256$29000$N2d5MO$QdeMs8.OJxnTP8ZtJw", "ntpClearSecret77",
                          "$9$ntpEncoded8Value", "snmpAuthClearKey", "snmpPrivClearKey"]

    @Test("secrets shown in clear are found first, then gone", arguments: ["text", "set", "xml"])
    func clearSecretsInEveryForm(form: String) throws {
        let raw = form == "text" ? Self.clearSecretsText : form == "set" ? Self.clearSecretsSet : Self.clearSecretsXML
        let secrets = Self.scan(raw)
        for value in Self.planted { #expect(secrets.values.contains(value), "scan misses \(value) in \(form)") }
        #expect(secrets.values.contains { $0.contains("cleartextPRIVATEkeyBODY") }, "scan misses the PEM body in \(form)")
        let output = form == "xml"
            ? String(decoding: try ConfigurationRedactor().redact(xml: Array(raw.utf8)), as: UTF8.self)
            : ConfigurationRedactor().redact(text: raw)
        for value in secrets.values { #expect(!output.contains(value), "\(form): \(value) survived") }
        #expect(!output.contains("PRIVATE KEY-----\n"), "\(form): a PEM block survived")
        // Key numbers, algorithm names and structure are kept.
        #expect(output.contains("authentication-key") && output.contains("md5") && output.contains("router-cert"))
        #expect(output.contains("monitor"))
        if form != "xml" {
            #expect(output.contains("authentication-key 7 type md5 value"), "\(form): the key number must stay")
        }
    }

    @Test func cryptTokensWithSchemeNamesButNotPrices() {
        let r = ConfigurationRedactor()
        #expect(r.redactTokens(in: "a $sha512$100$salt$hash b") == "a <redacted> b")
        #expect(r.redactTokens(in: "cost $100$ per port") == "cost $100$ per port", "a long numeric id is no scheme")
        #expect(r.redactTokens(in: "x $-y$z") == "x $-y$z")
        #expect(r.redactTokens(in: "k $2b$12$abcdefghijk") == "k <redacted>")
    }

    @Test func pemBlockWithoutEndIsRedactedToTheEnd() {
        let r = ConfigurationRedactor()
        let out = r.redactTokens(in: "before\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBODYsecret\n")
        #expect(out == "before\n<redacted>")
        let cert = "-----BEGIN CERTIFICATE-----\nMIIBpublic\n-----END CERTIFICATE-----"
        #expect(r.redactTokens(in: cert) == cert, "certificates are public")
    }
}
