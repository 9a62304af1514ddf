import XML

/// Removes secrets from Junos configurations before they leave the machine: from XML documents
/// (any reply, including a `<configuration-text>` inside one), from curly-brace text and from
/// `set` commands. Every secret value is replaced by ``marker`` (default `<redacted>`, written
/// `&lt;redacted&gt;` in XML and `"<redacted>"` in text); structure, names, addresses and SSH
/// public keys are kept. Pure: it never mutates its input.
///
/// Secret are:
/// - the value of a leaf named in ``secretKeywords`` (`encrypted-password`, `secret`,
///   `authentication-key`, IS-IS `hello-authentication-key`, `pre-shared-key ascii-text`/`hexadecimal`,
///   `simple-password`, md5 `key`, SNMPv3 `authentication-password`/`privacy-password`, ...),
///   whatever it looks like (legacy DES crypt such as `6ETjtWLqY222c` included), every word of it
///   when it is a list;
/// - the value at one of the ``secretPaths`` (see ``SecretPath``): SNMP community names (`snmp
///   community NAME`, the name is the password), trap-group names (sent as the community of the
///   traps), RMON event communities, SNMP proxy communities and license keys;
/// - any token that looks like a Junos/crypt hash (`$1$`, `$5$`, `$6$`, `$8$`, `$9$`, ...) anywhere;
/// - the password of a URL (`scp://user:PASSWORD@host/dir` in `archive-sites`, `refresh-from`, ...) anywhere;
/// - whatever matches one of the extra ``patterns``.
public struct ConfigurationRedactor: Sendable {
    /// The default replacement.
    public static let defaultMarker = "<redacted>"

    /// Leaf names (XML element names, text keywords) whose value is a secret.
    public static let defaultSecretKeywords: Set<String> = [
        "encrypted-password", "plain-text-password-value", "password", "secret", "shared-secret",
        "authentication-key", "hello-authentication-key", "simple-password", "key", "pre-shared-key", "ascii-text",
        "hexadecimal", "hexadecimal-text", "authentication-password", "privacy-password", "privacy-key", "community-name",
        "chap-secret", "default-chap-secret", "pap-password", "default-pap-password", "local-password", "cak",
        "certificate-key-string",
    ]

    /// Keywords after which, anywhere later in the same statement, the word after `value` is a
    /// secret: NTP's `authentication-key 1 type md5 value SECRET` (the key number is not).
    static let valueSecretKeywords: Set<String> = ["authentication-key"]

    /// Statement paths whose value is secret, whatever the leaf is called.
    public static let defaultSecretPaths: [SecretPath] = [
        SecretPath(components: ["snmp", "community", "name"]),
        SecretPath(components: ["snmp", "trap-group", "name"]),
        SecretPath(components: ["snmp", "rmon", "event", "community"]),
        // A proxied device's community: `snmp proxy P version-v2c snmp-community NAME`.
        SecretPath(components: ["snmp", "proxy", "version-v1", "snmp-community"]),
        SecretPath(components: ["snmp", "proxy", "version-v2c", "snmp-community"]),
        SecretPath(components: ["system", "license", "keys", "key", "name"]),
        // NTP keys in XML: `<authentication-key><name>1</name><type>md5</type><value>SECRET`.
        SecretPath(components: ["authentication-key", "value"]),
    ]

    public var marker: String
    public var secretKeywords: Set<String>
    public private(set) var secretPaths: [SecretPath]
    /// ``secretPaths`` by the element name they end with (XML) and by the keyword the secret word
    /// follows (text), so that a leaf or word is checked only against the paths that can match it.
    private var pathsByElement: [String: [[String]]] = [:]
    private var pathsByKeyword: [String: [ArraySlice<String>]] = [:]
    /// Extra regular expressions: every match in any value is replaced.
    public var patterns: [String] { compiled.map(\.source) }
    private var compiled: [CompiledPattern]

    /// The default rules.
    public init() {
        marker = Self.defaultMarker
        secretKeywords = Self.defaultSecretKeywords
        secretPaths = Self.defaultSecretPaths
        compiled = []
        indexSecretPaths()
    }

    /// The default rules plus extra leaf names, regular expressions (Swift `Regex` syntax) and
    /// statement paths (``SecretPath``, `snmp/trap-group/name`). Throws when a pattern does not
    /// compile or a path is not one (``RedactionRuleError``).
    public init(extraKeywords: Set<String> = [], extraPatterns: [String] = [], extraPaths: [String] = [],
                marker: String = defaultMarker) throws {
        self.marker = marker
        secretKeywords = Self.defaultSecretKeywords.union(extraKeywords)
        secretPaths = Self.defaultSecretPaths
        for text in extraPaths {
            let path = try SecretPath(text)
            if !secretPaths.contains(path) { secretPaths.append(path) }
        }
        compiled = try extraPatterns.map { try CompiledPattern($0) }
        indexSecretPaths()
    }

    private mutating func indexSecretPaths() {
        pathsByElement = [:]
        pathsByKeyword = [:]
        for path in secretPaths {
            pathsByElement[path.components.last!, default: []].append(path.components)
            pathsByKeyword[path.textKeywords.last!, default: []].append(path.textKeywords)
        }
    }

    // MARK: XML

    /// A copy of `document` with every secret replaced.
    public func redact(_ document: XMLDocument) -> XMLDocument {
        document.rewriting(text: redactText, attribute: redactAttribute, mixedText: redactMixedText, comment: redactComment)
    }

    /// Parses, redacts and serialises XML bytes, with a single tree in memory.
    public func redact(xml bytes: some Collection<UInt8>) throws(XMLError) -> [UInt8] {
        try XMLDocument.rewrite(bytes: bytes, options: XMLParseOptions(preserveWhitespace: true),
                                text: redactText, attribute: redactAttribute, mixedText: redactMixedText, comment: redactComment)
    }

    /// Leaves whose text is CLI configuration, read as text rather than as one value:
    /// `get-configuration` in text and set format, the reply to `command show configuration`
    /// (`<configuration-information><configuration-output>`), and any command's `<output>`.
    static let configurationTextElements: Set<String> = ["configuration-text", "configuration-set", "configuration-output", "output"]

    private func redactText(_ element: XMLElement) -> XMLReplacement {
        // The leaf's text made once (it was made three times: the walk now takes a third less, perf).
        let text = element.text
        // Whitespace only (no `value`): nothing to redact.
        guard text.utf8.contains(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) else { return .keep }
        return redact(text, of: element)
    }

    /// Text beside child elements is read as the element's value would be: a secret leaf that
    /// also holds an element must not keep its secret for that.
    private func redactMixedText(_ element: XMLElement, _ text: String) -> XMLReplacement {
        redact(text, of: element)
    }

    private func redact(_ text: String, of element: XMLElement) -> XMLReplacement {
        let name = element.name
        if Self.configurationTextElements.contains(name) {
            let redacted = redact(text: text)
            return redacted == text ? .keep : .replace(redacted)
        }
        if secretKeywords.contains(name) || isAtSecretPath(element, named: name) {
            return .replace(marker)
        }
        let redacted = redactTokens(in: text)
        return redacted == text ? .keep : .replace(redacted)
    }

    /// Comments and processing instructions are free text: a pasted hash or URL password goes.
    private func redactComment(_ text: String) -> XMLReplacement {
        let redacted = redactTokens(in: text)
        return redacted == text ? .keep : .replace(redacted)
    }

    private func redactAttribute(_ element: XMLElement, _ attribute: XMLAttribute) -> XMLReplacement {
        let redacted = redactTokens(in: attribute.value)
        return redacted == attribute.value ? .keep : .replace(redacted)
    }

    /// Whether the element's path ends with one of the ``secretPaths`` (`<undocumented>` wrappers
    /// are not part of a path).
    private func isAtSecretPath(_ element: XMLElement, named name: String) -> Bool {
        guard let candidates = pathsByElement[name] else { return false }
        func parent(of element: XMLElement) -> XMLElement? {
            var cursor = element.parent
            while let current = cursor, current.hasName("undocumented") { cursor = current.parent }
            return cursor
        }
        return candidates.contains { components in
            var cursor = element
            for component in components.dropLast().reversed() {
                guard let up = parent(of: cursor), up.hasName(component) else { return false }
                cursor = up
            }
            return true
        }
    }

    // MARK: Text and set

    /// Commands that start a `set`-form line; such a line carries its whole path and ends at the newline.
    static let setCommands: Set<String> = ["set", "delete", "deactivate", "activate", "protect"]

    /// Redacts curly-brace text (`show configuration`) or `set` commands (`show configuration |
    /// display set`) or a `show | compare` diff (`[edit …]` lines, `+`/`-`/`!` marks); layout, comments
    /// and everything not secret are kept byte for byte. Reads the
    /// text with the tokenizer the configuration facts use, so both see the same statements.
    public func redact(text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var tokenizer = ConfigurationTextTokenizer(scalars)
        var replacements: [Range<Int>] = []
        // Words of the open blocks' statements, outermost first, flat, and where each block's
        // words end: a statement's path is read in place, never rebuilt (linear in the text).
        var context: [String] = []
        var contextEnds: [Int] = []
        // How many of `contextEnds` a `[edit …]` header opened (0 or 1): below a header and no
        // block, lines are `set` commands or statements as at the top.
        var headerLevels = 0
        var words: [(text: String, range: Range<Int>, quoted: Bool, inList: Bool)] = []
        var inList = false
        // Words of a `[edit snmp]` line of `show | compare` being read; nil outside one.
        var diffHeader: [String]?

        func endStatement(opensBlock: Bool) {
            let plain = words.map(\.text)
            var index = 0
            // `set`/`deactivate` lines carry their whole path; curly text carries it in `context`.
            if let first = plain.first, Self.setCommands.contains(first), contextEnds.count == headerLevels { index = 1 }
            var secretIndices = Set<Int>()
            // `full` shares the context's storage: it must be gone before the context grows below,
            // or appending copies the whole path (quadratic in the depth).
            do {
                let full = StatementWords(context: context, words: plain, skip: index)
                let offset = context.count - index
                // Secret paths: the word after the path's last keyword (`trap-group NAME`, `community X`),
                // or every word of the list there.
                // The keyword may end the enclosing block's statement: `routing-instances { NAME {`.
                for k in stride(from: index, to: plain.count, by: 1) {
                    let before = k - 1 + offset
                    guard before >= 0, k == index || !words[k - 1].inList else { continue }
                    guard let candidates = pathsByKeyword[full[before]],
                          candidates.contains(where: { Self.path($0, endsAt: before, in: full) }) else { continue }
                    secretIndices.insert(k)
                    var m = k + 1
                    while words[k].inList, m < plain.count, words[m].inList { secretIndices.insert(m); m += 1 }
                }
            }
            // Secret keywords: leaves only (`key 0 { … }` is a key chain entry, not a secret).
            if !opensBlock {
                // `authentication-order [ password radius ]` lists words; none of them is a secret.
                for k in index..<plain.count where secretKeywords.contains(plain[k]) && k + 1 < plain.count && !words[k].inList {
                    // A keyword's list (`members [ a b ]`): every word of it, as XML's one leaf per word.
                    if words[k + 1].inList {
                        var m = k + 1
                        while m < plain.count, words[m].inList { secretIndices.insert(m); m += 1 }
                        continue
                    }
                    let next = plain[k + 1]
                    if secretKeywords.contains(next) { continue }
                    if k + 2 == plain.count || words[k + 1].quoted || Self.isCryptLike(Substring(next)) {
                        secretIndices.insert(k + 1)
                    }
                }
            }
            // `authentication-key 1 type md5 value SECRET`: the word after `value`.
            if let keyAt = plain[index...].firstIndex(where: Self.valueSecretKeywords.contains) {
                for k in (keyAt + 1)..<plain.count where plain[k] == "value" && k + 1 < plain.count { secretIndices.insert(k + 1) }
            }
            for k in index..<plain.count where Self.isCryptLike(Substring(plain[k])) || matchesPattern(plain[k]) {
                secretIndices.insert(k)
            }
            for k in secretIndices.sorted() { replacements.append(words[k].range) }
            if opensBlock {
                context.append(contentsOf: plain)
                contextEnds.append(context.count)
            }
            words = []
            inList = false
        }

        while let token = tokenizer.next() {
            // A `set` line ends at the newline.
            if token.lineIndent != nil, let first = words.first, contextEnds.count == headerLevels, Self.setCommands.contains(first.text) {
                endStatement(opensBlock: false)
            }
            switch token.kind {
            case .open: endStatement(opensBlock: true)
            case .close:
                if !words.isEmpty { endStatement(opensBlock: false) }
                if !contextEnds.isEmpty {
                    contextEnds.removeLast()
                    context.removeLast(context.count - (contextEnds.last ?? 0))
                    headerLevels = min(headerLevels, contextEnds.count)
                }
            case .semicolon: endStatement(opensBlock: false)
            case .word:
                if var header = diffHeader {
                    // `[edit]` is the top's header: one token.
                    if header.isEmpty && token.text != "edit" && token.text != "edit]" {
                        diffHeader = nil // a list after all
                    } else {
                        // `[edit snmp]`: the statements below it are at that path.
                        var word = token.unquoted
                        let closes = word.hasSuffix("]")
                        if closes { word.removeLast() }
                        if !word.isEmpty {
                            header.append(word)
                            // The header's words are a path like a `set` line's, secrets and all
                            // (`[edit snmp community NAME]`); "edit" stands where "set" would.
                            let range = closes ? token.range.lowerBound..<(token.range.upperBound - 1) : token.range
                            words.append((word, range, token.isQuoted, false))
                        }
                        if closes {
                            context = []
                            contextEnds = []
                            headerLevels = 0
                            inList = false
                            if words.first?.text == "edit" { words[0].text = "set" }
                            endStatement(opensBlock: false)
                            context = Array(header.dropFirst())
                            contextEnds = [context.count]
                            headerLevels = 1
                            diffHeader = nil
                        } else {
                            diffHeader = header
                        }
                        continue
                    }
                }
                if words.isEmpty, token.lineIndent != nil, token.text == "[" { diffHeader = []; inList = true; continue }
                // `show | compare` marks added and removed lines with `+` and `-`, and
                // (de)activated ones with `!`.
                if words.isEmpty, token.lineIndent != nil, token.text == "+" || token.text == "-" || token.text == "!" { continue }
                if token.text == "[" { inList = true }
                else if token.text == "]" { inList = false }
                // `inactive: community public { … }` is still the community statement.
                else if words.isEmpty, ConfigurationTextParser.statementPrefixes.contains(token.text) { continue }
                else { words.append((token.unquoted, token.range, token.isQuoted, inList)) }
            }
        }
        if !words.isEmpty { endStatement(opensBlock: false) }

        guard !replacements.isEmpty else { return redactTokens(in: text) }
        var out = String.UnicodeScalarView()
        var cursor = 0
        for range in replacements.sorted(by: { $0.lowerBound < $1.lowerBound }) where range.lowerBound >= cursor {
            out.append(contentsOf: scalars[cursor..<range.lowerBound])
            out.append(contentsOf: "\"\(marker)\"".unicodeScalars)
            cursor = range.upperBound
        }
        out.append(contentsOf: scalars[cursor...])
        return redactTokens(in: String(out))
    }

    /// XML list elements that text does not write: `<interfaces><interface><name>ge-0/0/0</name>`
    /// is `interfaces { ge-0/0/0 { … } }`, so in text such an element is its entry's name.
    static let unwrittenListElements: [String: String] = [
        "interfaces": "interface", "routing-instances": "instance", "vlans": "vlan", "bridge-domains": "domain",
    ]

    /// Whether `keywords` end at `full[end]`, each keyword one word after the one before it or two
    /// (the name of a list entry between: `rmon event 1 community`).
    static func path(_ keywords: ArraySlice<String>, endsAt end: Int, in full: StatementWords) -> Bool {
        func isUnwritten(_ i: Int) -> Bool {
            i > keywords.startIndex && unwrittenListElements[keywords[i - 1]] == keywords[i]
        }
        guard let last = keywords.last, end >= 0, full[end] == last || isUnwritten(keywords.endIndex - 1) else { return false }
        let rest = keywords.dropLast()
        if rest.isEmpty { return true }
        if path(rest, endsAt: end - 1, in: full) { return true }
        // An unwritten element is its entry's name, right below its list's keyword: no other word
        // follows it or comes before it (`interfaces interface-range R` is no interface).
        return !isUnwritten(rest.endIndex - 1) && !isUnwritten(keywords.endIndex - 1) && path(rest, endsAt: end - 2, in: full)
    }

    // MARK: Facts

    /// The facts with any secret-looking value replaced (they are not meant to hold any; this
    /// guards against a host name or version that is a pasted hash).
    public func redact(_ facts: ConfigurationFacts) -> ConfigurationFacts {
        var copy = facts
        copy.hostName = facts.hostName.map(redactTokens(in:))
        copy.domainName = facts.domainName.map(redactTokens(in:))
        copy.version = facts.version.map(redactTokens(in:))
        copy.commitUser = facts.commitUser.map(redactTokens(in:))
        return copy
    }

    // MARK: Tokens

    /// `text` (an rpc-error, a warning, a parse error, a syslog line: words a device chose) as it
    /// may leave the machine. Such text quotes configuration out of its context (`bad element:
    /// community NAME`, `text instead of XML data: set snmp community NAME ...`), so the word after
    /// any secret keyword, or after the keyword a secret path's value follows (`community`), is
    /// replaced wherever it stands, then tokens, URL passwords and the extra patterns as in any
    /// value. Over-redacting a diagnostic is the safe side. Linear in the text.
    public func redact(message text: String) -> String {
        guard !text.isEmpty else { return text }
        // The secret paths' keywords as text writes them (`snmp/community/name`: `community`;
        // `routing-instances/instance/name`: `routing-instances`), as the text redaction indexes them.
        let keywords = secretKeywords.union(pathsByKeyword.keys)
        // Quotes and brackets around a word are kept; what is inside them is the word.
        let wrapping = Set("\"'()[]{};,:".unicodeScalars)
        var out = String.UnicodeScalarView()
        var secretFollows = false
        var word = String.UnicodeScalarView()
        func flush() {
            guard !word.isEmpty else { return }
            let scalars = Array(word)
            var start = 0, end = scalars.count
            while start < end, wrapping.contains(scalars[start]) { start += 1 }
            while end > start, wrapping.contains(scalars[end - 1]) { end -= 1 }
            let core = String(String.UnicodeScalarView(scalars[start ..< end]))
            if secretFollows && !core.isEmpty {
                out.append(contentsOf: scalars[..<start])
                out.append(contentsOf: marker.unicodeScalars)
                out.append(contentsOf: scalars[end...])
                secretFollows = false
            } else {
                out.append(contentsOf: word)
                if !core.isEmpty { secretFollows = keywords.contains(core) }
            }
            word = String.UnicodeScalarView()
        }
        var quoted = false
        for scalar in text.unicodeScalars {
            // A quoted value is one word, blanks and all (`secret "two words"`).
            if scalar == "\"" {
                if word.isEmpty { quoted = true } else if quoted { quoted = false }
            }
            if scalar.properties.isWhitespace && !quoted {
                flush()
                out.append(scalar)
            } else {
                word.append(scalar)
            }
        }
        flush()
        return redactTokens(in: String(out))
    }

    /// Replaces every crypt-looking token, every URL password, every PEM private key block and
    /// every pattern match inside free text.
    public func redactTokens(in text: String) -> String {
        var result = text
        if text.utf8.contains(UInt8(ascii: "-")) { result = Self.redactPrivateKeyBlocks(in: result, marker: marker) }
        if text.utf8.contains(UInt8(ascii: "@")) { result = redactURLPasswords(in: result) }
        // On the bytes: Character search walks grapheme clusters.
        if result.utf8.contains(UInt8(ascii: "$")) {
            let scalars = Array(result.unicodeScalars)
            var out = String.UnicodeScalarView()
            var i = 0
            var changed = false
            while i < scalars.count {
                if scalars[i] == "$", let end = Self.cryptTokenEnd(scalars, from: i) {
                    out.append(contentsOf: marker.unicodeScalars)
                    i = end
                    changed = true
                } else {
                    out.append(scalars[i])
                    i += 1
                }
            }
            if changed { result = String(out) }
        }
        for pattern in compiled { result = pattern.replacing(in: result, with: marker) }
        return result
    }

    /// Every `-----BEGIN … PRIVATE KEY-----` block, through its `-----END … PRIVATE KEY-----` (or
    /// to the end of the text when it has none), replaced by the marker: a device may show a
    /// local certificate's key (`certificate-key-string`) or paste one into any free text.
    static func redactPrivateKeyBlocks(in text: String, marker: String) -> String {
        let bytes = Array(text.utf8)
        let begin = Array("-----BEGIN ".utf8), end = Array("-----END ".utf8)
        let privateKey = Array("PRIVATE KEY-----".utf8)
        func matches(_ pattern: [UInt8], at i: Int) -> Bool {
            i + pattern.count <= bytes.count && bytes[i..<(i + pattern.count)].elementsEqual(pattern)
        }
        /// The end of the `-----` label line starting at `i` when it names a private key.
        func privateKeyLabelEnd(from i: Int) -> Int? {
            var j = i
            while j < bytes.count, bytes[j] != UInt8(ascii: "\n"), j - i < 80 {
                if matches(privateKey, at: j) { return j + privateKey.count }
                j += 1
            }
            return nil
        }
        var out: [UInt8] = []
        var cursor = 0
        var i = 0
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "-"), matches(begin, at: i), let labelEnd = privateKeyLabelEnd(from: i + begin.count) else {
                i += 1
                continue
            }
            var j = labelEnd
            var blockEnd = bytes.count
            while j < bytes.count {
                if bytes[j] == UInt8(ascii: "-"), matches(end, at: j), let e = privateKeyLabelEnd(from: j + end.count) {
                    blockEnd = e
                    break
                }
                j += 1
            }
            out += bytes[cursor..<i]
            out += Array(marker.utf8)
            cursor = blockEnd
            i = blockEnd
        }
        guard cursor > 0 else { return text }
        out += bytes[cursor...]
        return String(decoding: out, as: UTF8.self)
    }

    /// `scheme://user:password@host…` with the password replaced. The password runs from the first
    /// `:` after `//` to the last `@` of the URL, so that one holding `@` or `:` goes whole; a
    /// `scp://user@host:/dir@x` path loses its `/dir` too, which errs on the safe side.
    private func redactURLPasswords(in text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var cursor = 0
        var i = 0
        while i + 2 < scalars.count {
            guard scalars[i] == ":", scalars[i + 1] == "/", scalars[i + 2] == "/", i > 0,
                  scalars[i - 1].properties.isAlphabetic || ("0"..."9").contains(scalars[i - 1]) else { i += 1; continue }
            let start = i + 3
            var end = start
            while end < scalars.count, !Self.isURLEnd(scalars[end]) { end += 1 }
            i = end
            guard let at = scalars[start..<end].lastIndex(of: "@"),
                  let colon = scalars[start..<at].firstIndex(of: ":"), colon + 1 < at else { continue }
            out.append(contentsOf: scalars[cursor...colon])
            out.append(contentsOf: marker.unicodeScalars)
            cursor = at
        }
        guard cursor > 0 else { return text }
        out.append(contentsOf: scalars[cursor...])
        return String(out)
    }

    /// Only blanks end the text searched for the password's `@`: a password may hold `;`, `<`,
    /// `{`, quotes and the like, and stopping there would leave it in place. After a closing
    /// quote, text up to an `@` before the blank goes with the password: the safe side.
    private static func isURLEnd(_ c: Unicode.Scalar) -> Bool {
        c.properties.isWhitespace
    }

    private func matchesPattern(_ word: String) -> Bool {
        compiled.contains { $0.matches(word) }
    }

    /// True for `$1$salt$hash`, `$9$…`, `$8$aes256-gcm$…` and the like.
    public static func isCryptLike(_ s: Substring) -> Bool {
        let scalars = Array(s.unicodeScalars)
        return !scalars.isEmpty && scalars[0] == "$" && cryptTokenEnd(scalars, from: 0) == scalars.count
    }

    /// The end of a crypt token starting at `start` (a `$`), or nil when none starts there:
    /// `$`, an id, `$`, then at least one value character. The id is one to three lower-case
    /// letters or digits (`$1$`, `$9$`, `$2b$`), or a scheme name of up to 32 with dashes
    /// (`$sha1$`, `$argon2id$`, `$pbkdf2-sha256$`).
    static func cryptTokenEnd(_ scalars: [Unicode.Scalar], from start: Int) -> Int? {
        var i = start + 1
        var idLength = 0
        var hasDash = false
        while i < scalars.count, idLength <= 32 {
            let c = scalars[i]
            if ("0"..."9").contains(c) || ("a"..."z").contains(c) { i += 1; idLength += 1; continue }
            if c == "-", idLength > 0 { hasDash = true; i += 1; idLength += 1; continue }
            break
        }
        guard (1...32).contains(idLength), i < scalars.count, scalars[i] == "$", scalars[i - 1] != "-" else { return nil }
        // Longer ids name a scheme: letters first (not `$100$` of a price or a variable).
        if idLength > 3 || hasDash {
            guard ("a"..."z").contains(scalars[start + 1]) else { return nil }
        }
        i += 1
        let bodyStart = i
        // PHC strings of named schemes carry comma-separated parameters (`$argon2id$v=19$m=65536,t=3,p=4$…`).
        let commasInside = idLength > 3 || hasDash
        while i < scalars.count, !isTokenEnd(scalars[i]) || (commasInside && scalars[i] == ",") { i += 1 }
        return i > bodyStart ? i : nil
    }

    private static func isTokenEnd(_ c: Unicode.Scalar) -> Bool {
        c.properties.isWhitespace || "\"'<>;{}[](),".unicodeScalars.contains(c)
    }
}

/// The words of a statement as its full path reads them: the open blocks' words, then the
/// statement's own (less a leading `set`), without copying either.
struct StatementWords {
    let context: [String]
    let words: [String]
    let skip: Int
    subscript(i: Int) -> String { i < context.count ? context[i] : words[i - context.count + skip] }
}

/// A compiled extra pattern. `Regex` is not declared Sendable on every platform; it is
/// immutable once compiled, so sharing it is safe.
private struct CompiledPattern: @unchecked Sendable {
    let source: String
    let regex: Regex<AnyRegexOutput>

    init(_ source: String) throws {
        self.source = source
        self.regex = try Regex(source)
    }

    func matches(_ text: String) -> Bool { text.contains(regex) }

    func replacing(in text: String, with marker: String) -> String { text.replacing(regex, with: marker) }
}

/// A statement path whose value is secret, written with XML element names, `/` between them
/// (`snmp/trap-group/name`). It matches the end of a statement's path, so that it holds inside
/// groups too. In XML the leaf at its end is redacted; in text and `set` commands the word after
/// its last keyword, or for a path ending in `name` the word after the keyword before it (the list
/// entry's name: `trap-group NAME`). Text may hold a list entry's name between two keywords:
/// `snmp rmon event 1 community X` is at `snmp/rmon/event/community`; where text writes no element
/// for a list entry, its name stands for it (`interfaces/interface/description` is
/// `interfaces ge-0/0/0 description X`).
public struct SecretPath: Sendable, Hashable, CustomStringConvertible {
    public let components: [String]

    /// Reads `snmp/trap-group/name`; throws when it is not a path of at least two keywords.
    public init(_ text: String) throws(RedactionRuleError) {
        let trimmed = text.trimmed
        func invalid(_ reason: String) -> RedactionRuleError { .invalidPath(text, reason: reason) }
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if trimmed.isEmpty { throw invalid("it is empty") }
        if parts.contains(where: \.isEmpty) { throw invalid("it has an empty statement name (a leading, trailing or double /)") }
        if let bad = parts.first(where: { $0.unicodeScalars.contains { " \t\"'{};[]*".unicodeScalars.contains($0) } }) {
            throw invalid("\"\(bad)\" is not a statement name (no blanks, quotes, braces, brackets or wildcards)")
        }
        if parts.count < 2 { throw invalid("one name alone is a leaf anywhere, a keyword rule: use redact-keyword (--keyword)") }
        components = parts
    }

    init(components: [String]) { self.components = components }

    /// The keywords as text writes them: a final `name` is the word after its list's keyword,
    /// and where text writes no element for the list entry, after the keyword of the list's
    /// parent (`routing-instances/instance/name` is `routing-instances NAME`).
    var textKeywords: ArraySlice<String> {
        guard components.last == "name" else { return components[...] }
        let keywords = components.dropLast()
        if keywords.count >= 2, let child = keywords.last,
           ConfigurationRedactor.unwrittenListElements[keywords[keywords.endIndex - 2]] == child {
            return keywords.dropLast()
        }
        return keywords
    }

    public var description: String { components.joined(separator: "/") }
}

/// Why an extra redaction rule cannot be used.
public enum RedactionRuleError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidPath(String, reason: String)

    public var description: String {
        switch self {
        case let .invalidPath(path, reason):
            return "expected a statement path such as snmp/trap-group/name, found \"\(path)\": \(reason)"
        }
    }
}
