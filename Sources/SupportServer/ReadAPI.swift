import Foundation
import Hummingbird
import Logging
import NIOCore
import SupportStore

/// The read-only JSON API under `/api/v1/` (described in docs/intake-api.yaml): a customer's
/// devices, bundles and cases, and a bundle's file. Each request needs a read token of that customer
/// (`care-support token create NAME --read`); upload tokens do not read, read tokens do not upload.
public enum ReadAPI {
    public static let prefix = "/api/v1"

    static func register(on router: Router<IntakeRequestContext>, database: any SupportDatabase, files: BundleFileStore) {
        let group = router.group(RouterPath(prefix + "/customers/:customer"))
        group.get("devices") { request, context -> Response in
            try await authorized(request, context, database) { customer in
                try json(200, try await database.devices(customer: customer))
            }
        }
        group.get("bundles") { request, context -> Response in
            try await authorized(request, context, database) { customer in
                let device = request.uri.queryParameters.get("device")
                return try json(200, try await database.bundles(customer: customer, device: device))
            }
        }
        group.get("cases") { request, context -> Response in
            try await authorized(request, context, database) { customer in
                let state = request.uri.queryParameters.get("state") ?? "open"
                guard state == "open" || state == "all" else { return error(400, "state is open (the default) or all") }
                return try json(200, try await database.cases(customer: customer, includeClosed: state == "all"))
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
                let body = try await FileIO().loadFile(path: files.path(sha256: bundle.fileSHA256), context: context)
                return Response(status: .ok, headers: [
                    .contentType: "application/gzip",
                    .contentDisposition: "attachment; filename=\"\(bundle.fileName)\"",
                ], body: body)
            }
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

    /// Runs `body` for the customer in the path when the request's read token is that customer's.
    static func authorized(_ request: Request, _ context: IntakeRequestContext, _ database: any SupportDatabase,
                           _ body: (String) async throws -> Response) async throws -> Response {
        let customer = context.parameters.get("customer") ?? ""
        var holder: String?
        do {
            if let header = request.headers[.authorization] {
                let parts = header.split(separator: " ", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == "bearer", parts[1].count <= 200 {
                    holder = try await database.customer(forTokenHash: UploadToken.hash(String(parts[1])), scope: .read)
                }
            }
            guard let holder else {
                var response = error(401, "no valid credentials: send Authorization: Bearer TOKEN with a token from `care-support token create NAME --read`")
                response.headers[.wwwAuthenticate] = "Bearer realm=\"care-support\""
                return response
            }
            guard holder == customer else { return error(403, "this token reads customer \(holder) only") }
            return try await body(customer)
        } catch let failure as SupportStoreError {
            context.logger.error("read API: \(failure)")
            return error(503, "the store cannot be read now, try again later")
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
