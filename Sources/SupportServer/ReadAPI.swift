import Foundation
import Hummingbird
import Logging
import NIOCore
import Reports
import SupportStore

/// The read-only JSON API under `/api/v1/` (described in docs/intake-api.yaml): a customer's
/// devices, bundles, a bundle's file, cases, the reports and the notifications; and the same
/// reports as HTML pages at a stable URL per customer, `/reports/CUSTOMER/` (for a browser: HTTP
/// Basic with the read token as password). Each request needs a read token of that customer
/// (`care-support token create NAME --read`); upload tokens do not read, read tokens do not upload.
public enum ReadAPI {
    public static let prefix = "/api/v1"
    public static let pagesPrefix = "/reports"

    static func register(on router: Router<IntakeRequestContext>, database: any SupportDatabase, files: BundleFileStore, reports: CustomerReports?) {
        let group = router.group(RouterPath(prefix + "/customers/:customer"))
        group.get("devices") { request, context -> Response in
            try await authorized(request, context, database) { customer in
                try json(200, try await database.devices(customer: customer))
            }
        }
        group.get("bundles") { request, context -> Response in
            try await authorized(request, context, database) { customer in
                let device = request.uri.queryParameters.get("device")
                return try await ListPage.answer(request, cursor: ListCursor.init(after:)) { limit, after in
                    try await database.bundles(customer: customer, device: device, limit: limit, after: after)
                }
            }
        }
        group.get("cases") { request, context -> Response in
            try await authorized(request, context, database) { customer in
                let state = request.uri.queryParameters.get("state") ?? "open"
                guard state == "open" || state == "all" else { return error(400, "state is open (the default) or all") }
                return try await ListPage.answer(request, cursor: ListCursor.init(after:)) { limit, after in
                    try await database.cases(customer: customer, includeClosed: state == "all", limit: limit, after: after)
                }
            }
        }
        group.get("bundles/:id") { request, context -> Response in
            try await authorized(request, context, database) { customer in
                guard let bundle = try await bundle(context, customer, database) else { return notFound(context) }
                return try json(200, bundle)
            }
        }
        group.get("bundles/:id/file") { request, context -> Response in
            try await authorized(request, context, database) { customer in
                guard let bundle = try await bundle(context, customer, database) else { return notFound(context) }
                let body: ResponseBody
                let path = files.path(sha256: bundle.fileSHA256)
                do {
                    // FileIO opens the file only once the answer's head is sent: a file that is
                    // there but unreadable, or not the size stored, is found here.
                    var info = stat()
                    guard access(path, R_OK) == 0, stat(path, &info) == 0, Int64(info.st_size) == Int64(bundle.fileSize) else {
                        throw StoredFileUnreadable()
                    }
                    body = try await FileIO().loadFile(path: path, context: context)
                } catch let failure {
                    // The row is there and its file is not readable (storage not mounted, removed).
                    context.logger.error("read API: the stored file of bundle \(bundle.id) cannot be read: \(failure)")
                    return error(503, "the stored file of bundle \(bundle.id) cannot be read now, try again later")
                }
                return Response(status: .ok, headers: [
                    .contentType: "application/gzip",
                    .contentDisposition: "attachment; filename=\"\(bundle.fileName)\"",
                ], body: body)
            }
        }
        registerReports(on: router, database: database, reports: reports)
    }

    /// A customer's reports and notifications, JSON under /api/v1 and HTML under /reports.
    static func registerReports(on router: Router<IntakeRequestContext>, database: any SupportDatabase, reports: CustomerReports?) {
        let group = router.group(RouterPath(prefix + "/customers/:customer"))
        group.get("reports/bugs") { request, context -> Response in
            try await withReports(request, context, database, reports) { reports, customer in
                text(200, try await reports.served(customer: customer, report: "bugs.json", readsConfiguration: true) {
                    ReportRenderer.render(reports.bugs($0), as: .json)
                }, type: "application/json")
            }
        }
        group.get("reports/eol") { request, context -> Response in
            try await withReports(request, context, database, reports) { reports, customer in
                guard let months = window(request) else { return error(400, "within: expected a number of months (12m) or years (2y)") }
                return text(200, try await reports.served(customer: customer, report: "eol.json \(months.map(String.init) ?? "-")", readsConfiguration: false) {
                    try ReportRenderer.render(reports.lifecycle($0, withinMonths: months), as: .json)
                }, type: "application/json")
            }
        }
        group.get("reports/health") { request, context -> Response in
            try await withReports(request, context, database, reports) { reports, customer in
                text(200, try await reports.served(customer: customer, report: "health.json", readsConfiguration: false) {
                    try ReportRenderer.render(reports.health($0), as: .json)
                }, type: "application/json")
            }
        }
        group.get("notifications") { request, context -> Response in
            try await authorized(request, context, database) { customer in
                let given = request.uri.queryParameters.getAll("limit")
                guard given.count <= 1, let asked = given.isEmpty ? 50 : Int(given[0]) else {
                    return error(400, "limit: expected one whole number (1-500)")
                }
                let limit = min(max(asked, 1), 500)
                // The documents are stored as JSON already: an array of them, unparsed.
                let documents = try await database.notifications(customer: customer, limit: limit).map(\.document)
                return text(200, "[" + documents.joined(separator: ",") + "]", type: "application/json")
            }
        }
        group.get("notifications/preview") { request, context -> Response in
            try await withReports(request, context, database, reports) { reports, customer in
                text(200, try await CustomerNotification.preview(customer: customer, reports: reports, html: false), type: "application/json")
            }
        }

        let pages = router.group(RouterPath(pagesPrefix + "/:customer"))
        pages.get("/") { request, context -> Response in
            // `/reports/ACME` (no slash): the page's relative links would resolve under
            // `/reports/`; sent to `ACME/`, relative too, so that a proxy's prefix is kept.
            // Only a customer's name (never `http:elsewhere`), as a path below this one (`./`).
            if !request.uri.path.hasSuffix("/"), let last = request.uri.path.split(separator: "/").last,
               (try? Customer.validate(name: String(last))) != nil {
                let query = request.uri.query.map { "?\($0)" } ?? ""
                return Response(status: .permanentRedirect, headers: [.location: "./\(last)/\(query)"])
            }
            return try await withReports(request, context, database, reports, page: true) { _, customer in
                let links = [("bugs.html", "Bug notifications: which advisories can hit each device"),
                             ("eol.html", "EOL/EOS/EOE: software, chassis and FRUs"),
                             ("health.html", "Health checks"),
                             ("notification.html", "What is new since the last notification (not recorded)")]
                let list = links.map { "<li><a href=\"\($0.0)\">\(HTMLReport.escape($0.1))</a></li>" }.joined(separator: "\n")
                return html(HTMLReport.page(title: "care-support reports for \(customer)", summary: [], sections: "<ul>\n\(list)\n</ul>\n"))
            }
        }
        pages.get("bugs.html") { request, context -> Response in
            try await withReports(request, context, database, reports, page: true) { reports, customer in
                html(try await reports.served(customer: customer, report: "bugs.html", readsConfiguration: true) {
                    ReportRenderer.render(reports.bugs($0), as: .html)
                })
            }
        }
        pages.get("eol.html") { request, context -> Response in
            try await withReports(request, context, database, reports, page: true) { reports, customer in
                guard let months = window(request) else { return error(400, "within: expected a number of months (12m) or years (2y)") }
                return html(try await reports.served(customer: customer, report: "eol.html \(months.map(String.init) ?? "-")", readsConfiguration: false) {
                    try ReportRenderer.render(reports.lifecycle($0, withinMonths: months), as: .html)
                })
            }
        }
        pages.get("health.html") { request, context -> Response in
            try await withReports(request, context, database, reports, page: true) { reports, customer in
                html(try await reports.served(customer: customer, report: "health.html", readsConfiguration: false) {
                    try ReportRenderer.render(reports.health($0), as: .html)
                })
            }
        }
        pages.get("notification.html") { request, context -> Response in
            try await withReports(request, context, database, reports, page: true) { reports, customer in
                html(try await CustomerNotification.preview(customer: customer, reports: reports, html: true))
            }
        }
    }

    /// `?within=12m`; nil when malformed; absent: `[reports] eol-window` (applied by the reports).
    static func window(_ request: Request) -> Int?? {
        guard let text = request.uri.queryParameters.get("within") else { return .some(nil) }
        return LifecycleReport.windowMonths(text).map { .some($0) }
    }

    static func html(_ page: String) -> Response {
        // Self-contained pages: nothing from elsewhere, and not framed by other sites.
        var response = text(200, page, type: "text/html; charset=utf-8")
        response.headers[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'; script-src \(HTMLReport.scriptSource); "
            + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        response.headers[.cacheControl] = "no-store"
        return response
    }

    static func text(_ status: Int, _ body: String, type: String) -> Response {
        Response(status: .init(code: status), headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// Runs `body` with the reports of an authorized customer; 503 when no reference data was found at start.
    static func withReports(_ request: Request, _ context: IntakeRequestContext, _ database: any SupportDatabase, _ reports: CustomerReports?,
                            page: Bool = false, _ body: @escaping (CustomerReports, String) async throws -> Response) async throws -> Response {
        try await authorized(request, context, database, page: page) { customer in
            guard let reports else {
                return error(503, "no reference data: set [reports] data-directory in support.conf (the repository's data/ or share/care-agent/data) and restart")
            }
            return try await body(reports, customer)
        }
    }

    /// The stored bundle `:id` names, if it is this customer's (another customer's is not found).
    static func bundle(_ context: IntakeRequestContext, _ customer: String, _ database: any SupportDatabase) async throws -> StoredBundle? {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text),
              let bundle = try await database.bundle(id: id), bundle.customer == customer else { return nil }
        return bundle
    }

    static func notFound(_ context: IntakeRequestContext) -> Response {
        error(404, "no such bundle: \(context.parameters.get("id") ?? "")")
    }

    /// The read token of an `Authorization` header: `Bearer TOKEN`, or `Basic` with the token as
    /// password (what a browser sends for the HTML pages; the user name is not checked).
    static func token(_ header: String) -> String? {
        let parts = header.split(separator: " ", maxSplits: 1)
        // Blanks around the credentials are read as the upload path reads them.
        guard parts.count == 2, case let value = parts[1].trimmingCharacters(in: .whitespaces), !value.isEmpty, value.count <= 400 else { return nil }
        switch parts[0].lowercased() {
        case "bearer": return value
        case "basic":
            guard let decoded = Data(base64Encoded: value), let text = String(data: decoded, encoding: .utf8),
                  let colon = text.firstIndex(of: ":") else { return nil }
            return String(text[text.index(after: colon)...])
        default: return nil
        }
    }

    /// Runs `body` for the customer in the path when the request's read token is that customer's.
    static func authorized(_ request: Request, _ context: IntakeRequestContext, _ database: any SupportDatabase, page: Bool = false,
                           _ body: (String) async throws -> Response) async throws -> Response {
        let customer = context.parameters.get("customer") ?? ""
        var holder: String?
        do {
            if let header = request.headers[.authorization], let token = token(header), token.count <= 200 {
                holder = try await database.customer(forTokenHash: UploadToken.hash(token), scope: .read)
            }
            // A browser asks for the token (as password) on the HTML pages, one realm per
            // customer: the token it keeps for one customer's pages is not sent to another's.
            let challenge = page ? "Basic realm=\"care-support reports \(customer.filter { $0 != "\"" && $0 != "\\" })\", charset=\"UTF-8\""
                : "Bearer realm=\"care-support\""
            guard let holder else {
                var response = error(401, "no valid credentials: send Authorization: Bearer TOKEN with a token from `care-support token create NAME --read`")
                response.headers[.wwwAuthenticate] = challenge
                return response
            }
            guard holder == customer else {
                // A page asks again (the browser offers the login box) instead of a dead end.
                var response = error(page ? 401 : 403, "this token reads customer \(holder) only")
                if page { response.headers[.wwwAuthenticate] = challenge }
                return response
            }
            return try await body(customer)
        } catch let failure as SupportStoreError {
            context.logger.error("read API: \(failure)")
            return error(503, "the store cannot be read now, try again later")
        } catch let failure as ReportRenderError {
            return error(400, failure.description)
        }
    }

    static func json(_ status: Int, _ value: some Encodable) throws -> Response {
        let data = try SupportJSON.encoder(pretty: false).encode(value)
        return Response(status: .init(code: status), headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ status: Int, _ message: String) -> Response {
        struct Failure: Encodable { var error: String }
        // Encoding a struct of one string cannot fail.
        return (try? json(status, Failure(error: message))) ?? Response(status: .init(code: status))
    }
}

/// The stored file of a bundle is not readable as stored (for the 503 of `bundles/ID/file`).
private struct StoredFileUnreadable: Error {}

/// One page of a listing (`bundles`, `cases`): `limit` rows (1-5000, default 500; out-of-range
/// numbers clamped, as `notifications` does) after the `after` cursor. A full page answers with
/// `Link: <?…&after=CURSOR>; rel="next"` (RFC 8288), the rest of the query kept: a store of a
/// million bundles is listed a page at a time, never built into one answer. The link is a
/// reference of a query alone (RFC 3986 5.2.2: the path is the one the client asked for), so it
/// stays right behind a reverse proxy that serves the API under another path prefix.
struct ListPage {
    static let defaultLimit = 500
    static let maximumLimit = 5000

    var limit: Int
    var after: ListCursor?

    /// The page `request` asks for, read with `fetch` (a limit and a cursor), as its answer; 400
    /// naming the parameter when `limit` or `after` is not one.
    static func answer<Row: Encodable>(_ request: Request, cursor: (Row) -> ListCursor,
                                       fetch: (_ limit: Int, _ after: ListCursor?) async throws -> [Row]) async throws -> Response {
        let limits = request.uri.queryParameters.getAll("limit")
        guard limits.count <= 1, let asked = limits.isEmpty ? defaultLimit : Int(limits[0]) else {
            return ReadAPI.error(400, "limit: expected one whole number (1-\(maximumLimit))")
        }
        let cursors = request.uri.queryParameters.getAll("after")
        guard cursors.count <= 1 else { return ReadAPI.error(400, "after: given more than once") }
        var after: ListCursor?
        if let text = cursors.first {
            guard let cursor = ListCursor(String(text)) else {
                return ReadAPI.error(400, "after: not a cursor of this listing (copy it from the Link header of the page before)")
            }
            after = cursor
        }
        let page = ListPage(limit: min(max(asked, 1), maximumLimit), after: after)
        // One more than the page: whether a next one exists, without counting them all.
        return try page.response(try await fetch(page.limit + 1, page.after), request: request, cursor: cursor)
    }

    /// `found` (fetched with a limit one more than the page's) as the page's JSON answer, with
    /// the link to the next page when there is one.
    func response<Row: Encodable>(_ found: [Row], request: Request, cursor: (Row) -> ListCursor) throws -> Response {
        let rows = Array(found.prefix(limit))
        var response = try ReadAPI.json(200, rows)
        if found.count > limit, let last = rows.last {
            var next = URLComponents()
            var items = request.uri.queryParameters.filter { $0.key != "limit" && $0.key != "after" }
                .map { URLQueryItem(name: String($0.key), value: String($0.value)) }
            items.append(URLQueryItem(name: "limit", value: "\(limit)"))
            items.append(URLQueryItem(name: "after", value: cursor(last).description))
            next.queryItems = items
            // URLComponents percent-encodes what a query may not hold; a cursor is digits, a dot and a UUID.
            response.headers[.init("Link")!] = "<\(next.string ?? "")>; rel=\"next\""
        }
        return response
    }
}
