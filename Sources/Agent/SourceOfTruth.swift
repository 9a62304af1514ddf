import Foundation

/// Reads devices from NetBox (REST API 4.x) or Nautobot (REST API 2.x/3.x):
/// `GET <url>/api/dcim/devices/` with the configured filters, following `next` to the last
/// page. Each device becomes an ``InventoryEntry``: its name, its primary IPv4 address (else
/// IPv6) without the prefix length as host, the NETCONF port and care-agent group from a
/// custom field (then the config context), and its platform's name.
///
/// A device that cannot be used (no name, no primary IP, another platform, a port that is not
/// one) is skipped with a message naming it; an answer that is not a page of devices, a refused
/// token, or more pages or devices than allowed fails the whole read, so that a partial list
/// never replaces a good one.
public struct SourceOfTruthClient: Sendable {
    public enum Flavor: String, Sendable { case netbox = "NetBox", nautobot = "Nautobot" }

    public var source: String
    public var flavor: Flavor
    public var settings: SourceOfTruthSettings
    public var maximumDevices: Int
    public var defaultGroup: String

    public init(source: InventorySource) {
        self.source = source.name
        switch source.kind {
        case let .nautobot(s): flavor = .nautobot; settings = s
        case let .netbox(s): flavor = .netbox; settings = s
        default: flavor = .netbox; settings = SourceOfTruthSettings(url: "")
        }
        maximumDevices = source.maximumDevices
        defaultGroup = source.group
    }

    /// The first page's URL: the filters as the API takes them, the page size, and what each
    /// flavor needs to answer with addresses and platform names.
    public var firstPageURL: String {
        var items = [URLQueryItem(name: "limit", value: "\(settings.pageSize)")]
        for filter in settings.filters where !(flavor == .nautobot && filter.key == Self.networkDriverFilter) {
            items.append(URLQueryItem(name: filter.key, value: filter.value))
        }
        switch flavor {
        case .netbox:
            // The config context is costly to render for every device: asked for only when used.
            if !settings.configContext { items.append(URLQueryItem(name: "exclude", value: "config_context")) }
        case .nautobot:
            // Nautobot 2.x answers related objects as bare references unless depth=1.
            items.append(URLQueryItem(name: "depth", value: "1"))
            if settings.configContext { items.append(URLQueryItem(name: "include", value: "config_context")) }
        }
        var components = URLComponents()
        components.queryItems = items
        // URLComponents leaves "+" alone in queries, which servers read as a blank.
        let query = (components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
        return settings.url + "/api/dcim/devices/?" + query
    }

    /// Nautobot's device list does not filter on the platform's network driver (3.2 answers
    /// 400 "Unknown filter field"): the agent applies it to each device (`depth=1` has the driver).
    static let networkDriverFilter = "platform__network_driver"

    /// The network drivers asked for with `platform__network_driver` (Nautobot), lowercased.
    var networkDrivers: Set<String> {
        flavor == .nautobot ? Set(settings.filters.filter { $0.key == Self.networkDriverFilter }.map { $0.value.lowercased() }) : []
    }

    /// The Authorization header: NetBox's v2 tokens (`nbt_...`) are bearer tokens, v1 tokens and
    /// Nautobot's use the `Token` scheme.
    static func authorization(_ token: String, flavor: Flavor) -> String {
        flavor == .netbox && token.hasPrefix("nbt_") ? "Authorization: Bearer \(token)" : "Authorization: Token \(token)"
    }

    /// Reads every page (blocking: run it off the cooperative pool). `get` performs one request.
    public func read(environment: [String: String] = ProcessInfo.processInfo.environment) -> Result<InventoryYield, InventorySourceError> {
        read(environment: environment) { CurlGet.perform($0) }
    }

    func read(environment: [String: String], get: (CurlGet.Request) -> CurlGet.Response) -> Result<InventoryYield, InventorySourceError> {
        let token: String
        do { token = try settings.token(source: source, environment: environment) } catch { return .failure(error) }
        var proxyCredentials: String?
        if let path = settings.proxyCredentialsFile {
            do { proxyCredentials = try ProxyURL.credentials(path) } catch { return .failure(InventorySourceError(source: source, error.description)) }
        }
        let plain = settings.url.lowercased().hasPrefix("http://")
        var out = InventoryYield(source: source)
        var url: String? = firstPageURL
        var pages = 0
        var seen: Set<String> = []
        let drivers = networkDrivers
        while let pageURL = url {
            pages += 1
            guard pages <= settings.maximumPages else {
                return .failure(fail("more than \(settings.maximumPages) pages (maximum-pages); the last good inventory is kept"))
            }
            guard seen.insert(pageURL).inserted else {
                return .failure(fail("the server's next page repeats \(pageURL): stopped"))
            }
            let request = CurlGet.Request(url: pageURL, headers: [Self.authorization(token, flavor: flavor), "Accept: application/json"],
                                          caFile: settings.caFile, proxy: settings.proxy, proxyCredentials: proxyCredentials, timeout: settings.timeout,
                                          maximumBytes: settings.maximumResponseSize, allowPlainHTTP: plain)
            let body: [UInt8]
            switch get(request) {
            case let .failed(reason):
                return .failure(fail("cannot reach \(flavor.rawValue) at \(settings.url): \(reason)"))
            case let .tooLarge(limit):
                return .failure(fail("an answer from \(pageURL) is larger than \(limit) bytes (maximum-response-size)"))
            case let .http(status, answer) where status == 401 || status == 403:
                return .failure(fail("\(flavor.rawValue) refused the API token (HTTP \(status)\(Self.detail(answer))): check token-file or token-credential, and that the token is not expired or revoked"))
            case let .http(status, answer) where status != 200:
                return .failure(fail("\(flavor.rawValue) answered HTTP \(status) to \(pageURL)\(Self.detail(answer))"))
            case let .http(_, answer):
                body = answer
            }
            let page: [String: Any]
            do {
                guard let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                    return .failure(fail("the answer from \(pageURL) is not a JSON object: not a \(flavor.rawValue) device list"))
                }
                page = object
            } catch {
                return .failure(fail("the answer from \(pageURL) is not JSON (\(body.count) bytes): not a \(flavor.rawValue) device list"))
            }
            guard let results = page["results"] as? [Any] else {
                return .failure(fail("the answer from \(pageURL) has no \"results\" list: not a \(flavor.rawValue) device list"))
            }
            if let count = page["count"] as? Int, count > maximumDevices {
                return .failure(fail("the server lists \(count) devices, more than maximum-devices = \(maximumDevices)"))
            }
            for record in results {
                if !drivers.isEmpty {
                    let driver = (((record as? [String: Any])?["platform"] as? [String: Any])?["network_driver"] as? String)?.lowercased()
                    guard let driver, drivers.contains(driver) else { continue }
                }
                switch entry(record) {
                case let .success(entry): out.entries.append(entry)
                case let .failure(message): out.skipped.append(message.description)
                }
            }
            guard out.entries.count + out.skipped.count <= maximumDevices else {
                return .failure(fail("more than maximum-devices = \(maximumDevices) devices"))
            }
            switch page["next"] {
            case nil, is NSNull: url = nil
            case let next as String:
                switch sameServer(next) {
                case let .success(resolved): url = resolved
                case let .failure(error): return .failure(error)
                }
            default:
                return .failure(fail("the answer from \(pageURL) has a \"next\" that is not a URL"))
            }
        }
        return .success(out)
    }

    private func fail(_ message: String) -> InventorySourceError { InventorySourceError(source: source, message) }

    /// The first bytes of an error answer (NetBox's and Nautobot's `{"detail": ...}`), printable only.
    static func detail(_ body: [UInt8]) -> String {
        if let object = try? JSONSerialization.jsonObject(with: Data(body.prefix(4096))) as? [String: Any], let detail = object["detail"] as? String {
            return ": " + String(detail.prefix(200).filter { !$0.isNewline && $0.isASCII || $0.isLetter })
        }
        let text = String(decoding: body.prefix(200), as: UTF8.self).filter { $0.isASCII && !$0.isNewline && ($0.isLetter || $0.isNumber || $0.isPunctuation || $0 == " ") }
        return text.isEmpty ? "" : ": \(text)"
    }

    /// `next` on the configured server, with the configured scheme and port: a server behind a
    /// TLS-terminating proxy often writes http:// there, and the token must never go elsewhere.
    func sameServer(_ next: String) -> Result<String, InventorySourceError> {
        guard let parsed = URLComponents(string: next), let base = URLComponents(string: settings.url) else {
            return .failure(fail("the server's next page \"\(next.prefix(200))\" is not a URL"))
        }
        if let host = parsed.host, host.lowercased() != base.host?.lowercased() {
            return .failure(fail("the server's next page is on another host (\(host)): not followed, the token stays with \(base.host ?? "")"))
        }
        var resolved = base
        resolved.percentEncodedPath = parsed.percentEncodedPath
        resolved.percentEncodedQuery = parsed.percentEncodedQuery
        guard let string = resolved.string else { return .failure(fail("the server's next page \"\(next.prefix(200))\" is not a URL")) }
        return .success(string)
    }

    /// One device record → an entry; a message naming the device when it is skipped.
    func entry(_ record: Any) -> Result<InventoryEntry, SkipMessage> {
        guard let device = record as? [String: Any] else {
            return .failure(SkipMessage("inventory \(source): a device record that is not a JSON object skipped"))
        }
        let id = (device["id"] as? Int).map(String.init) ?? (device["id"] as? String) ?? "?"
        let origin = (device["url"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? "\(settings.url)/api/dcim/devices/\(id)/"
        guard let name = device["name"] as? String, !name.trimmingCharacters(in: .whitespaces).isEmpty else {
            return .failure(SkipMessage("inventory \(source): device \(id) (\(origin)) skipped: it has no name"))
        }
        func skip(_ why: String) -> Result<InventoryEntry, SkipMessage> {
            .failure(SkipMessage("inventory \(source): device \(name) (\(origin)) skipped: \(why)"))
        }
        // Platform: NetBox {name, slug}, Nautobot {name, network_driver}.
        let platform = device["platform"] as? [String: Any]
        let platformName = platform?["name"] as? String
        if !settings.platforms.isEmpty {
            let names = [platform?["slug"], platform?["name"], platform?["network_driver"]].compactMap { ($0 as? String)?.lowercased() }
            guard names.contains(where: settings.platforms.contains) else {
                return skip(platformName.map { "platform \($0) is not one of platforms = \(settings.platforms.joined(separator: ", "))" }
                    ?? "it has no platform (platforms = \(settings.platforms.joined(separator: ", ")); platforms = any takes every device)")
            }
        }
        var host: String?
        for key in ["primary_ip4", "primary_ip6"] {
            guard let ip = device[key], !(ip is NSNull) else { continue }
            guard let address = (ip as? [String: Any])?["address"] as? String else {
                return skip("\(key) has no address (a Nautobot answer without depth=1, or a malformed record)")
            }
            let bare = String(address.split(separator: "/", maxSplits: 1).first ?? "")
            guard Self.isIPAddress(bare) else { return skip("\(key) \"\(address.prefix(60))\" is not an IP address") }
            host = bare
            break
        }
        guard let host else { return skip("it has no primary IPv4 or IPv6 address") }
        let customFields = device["custom_fields"] as? [String: Any] ?? [:]
        let context = settings.configContext ? device["config_context"] as? [String: Any] ?? [:] : [:]
        func value(_ key: String) -> Any? {
            for container in [customFields, context] {
                if let v = container[key], !(v is NSNull) { return v }
            }
            // A dotted key reaches into the config context (`care_agent.port`).
            guard key.contains(".") else { return nil }
            var current: Any? = context
            for part in key.split(separator: ".").prefix(8) { current = (current as? [String: Any])?[String(part)] }
            return current is NSNull ? nil : current
        }
        var mapped = Device(name: name, host: host, group: defaultGroup, platform: platformName)
        if let port = value(settings.portField) {
            let number: Int?
            switch port {
            case let s as String: number = Int(s.trimmingCharacters(in: .whitespaces))
            case let n as Int: number = n
            case let d as Double: number = Int(exactly: d)
            default: number = nil
            }
            guard let number, (1...65535).contains(number) else {
                return skip("\(settings.portField) \"\(String(describing: port).prefix(40))\" is not a TCP port from 1 to 65535")
            }
            mapped.port = number
        }
        if let group = value(settings.groupField) {
            guard let groupName = group as? String, !groupName.isEmpty else { return skip("\(settings.groupField) is not a group name") }
            mapped.group = groupName
        }
        return .success(InventoryEntry(device: mapped, origin: origin))
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}

/// Why one record was skipped, naming the device and the source.
public struct SkipMessage: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
