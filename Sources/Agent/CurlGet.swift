import CLibCurl
import Foundation

/// One HTTP GET with libcurl's easy interface (the uploader's libcurl, its CA and proxy
/// handling), keeping at most `maximumBytes` of the body: a larger answer ends the transfer.
/// Blocking: run it on a ``SerialWorkThread``, never on Swift's cooperative pool.
struct CurlGet {
    struct Request: Sendable {
        var url: String
        var headers: [String]
        var caFile: String?
        var proxy: String?
        /// `user:password` for the proxy.
        var proxyCredentials: String? = nil
        var timeout: Duration
        var maximumBytes: Int
        /// http:// only when the configured URL says so (a lab or test server).
        var allowPlainHTTP: Bool
    }

    enum Response: Equatable, Sendable {
        case http(status: Int, body: [UInt8])
        case failed(String)
        case tooLarge(limit: Int)
    }

    final class CallbackContext {
        var body: [UInt8] = []
        let limit: Int
        var overflowed = false
        init(limit: Int) { self.limit = limit }
    }

    static func perform(_ request: Request) -> Response {
        guard CurlPut.globalInit else { return .failed("libcurl could not be initialised") }
        let context = CallbackContext(limit: request.maximumBytes)
        let contextPointer = Unmanaged.passUnretained(context).toOpaque()
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for header in request.headers { headerList = curl_slist_append(headerList, header) }
        guard let handle = curl_easy_init() else { return .failed("libcurl could not create a transfer") }
        defer { curl_easy_cleanup(handle) }

        let writeCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { buffer, size, count, user in
            let context = Unmanaged<CallbackContext>.fromOpaque(user!).takeUnretainedValue()
            let total = size * count
            guard context.body.count + total <= context.limit else {
                context.overflowed = true
                return 0  // ends the transfer with CURLE_WRITE_ERROR
            }
            if total > 0, let buffer {
                buffer.withMemoryRebound(to: UInt8.self, capacity: total) { context.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: total)) }
            }
            return total
        }

        var setupError: CURLcode = CURLE_OK
        func set(_ option: CURLoption, _ value: Int) { if setupError == CURLE_OK { setupError = care_curl_setopt_long(handle, option, value) } }
        func set(_ option: CURLoption, _ value: String) { if setupError == CURLE_OK { setupError = care_curl_setopt_string(handle, option, value) } }
        func set(_ option: CURLoption, pointer: UnsafeMutableRawPointer?) { if setupError == CURLE_OK { setupError = care_curl_setopt_pointer(handle, option, pointer) } }

        set(CURLOPT_ERRORBUFFER, pointer: UnsafeMutableRawPointer(errorBuffer))
        set(CURLOPT_URL, request.url)
        set(CURLOPT_SSL_VERIFYPEER, 1)
        set(CURLOPT_SSL_VERIFYHOST, 2)
        set(CURLOPT_PROTOCOLS_STR, request.allowPlainHTTP ? "http,https" : "https")
        set(CURLOPT_NOSIGNAL, 1)
        // Redirects are not followed: the token must not travel to a host agent.conf did not name.
        set(CURLOPT_FOLLOWLOCATION, 0)
        set(CURLOPT_ACCEPT_ENCODING, "")
        set(CURLOPT_WRITEFUNCTION, pointer: unsafeBitCast(writeCallback, to: UnsafeMutableRawPointer.self))
        set(CURLOPT_WRITEDATA, pointer: contextPointer)
        set(CURLOPT_HTTPHEADER, pointer: UnsafeMutableRawPointer(headerList))
        set(CURLOPT_TIMEOUT_MS, Int(request.timeout.components.seconds * 1000 + request.timeout.components.attoseconds / 1_000_000_000_000_000))
        set(CURLOPT_CONNECTTIMEOUT_MS, 30_000)
        CurlPut.trust(only: request.caFile, set: set, set: set)
        if let proxy = request.proxy { set(CURLOPT_PROXY, proxy) }
        if let credentials = request.proxyCredentials { CurlPut.logIn(credentials, set: set, set: set) }
        guard setupError == CURLE_OK else {
            return .failed("libcurl refused an option: \(String(cString: curl_easy_strerror(setupError)))")
        }
        let code = curl_easy_perform(handle)
        if context.overflowed { return .tooLarge(limit: request.maximumBytes) }
        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            let summary = String(cString: curl_easy_strerror(code))
            return .failed(detail.isEmpty ? summary : "\(summary): \(detail)")
        }
        var status = 0
        _ = care_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return .http(status: status, body: context.body)
    }
}
