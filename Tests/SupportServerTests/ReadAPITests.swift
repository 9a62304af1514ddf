import Foundation
import Testing
import TestSupport

extension IntakeHarness {
    /// GET `path` under /api/v1 with curl; returns the status and body.
    func get(_ path: String, token: String?) throws -> (status: Int, body: Data) {
        let body = dir.path + "/get-\(UUID().uuidString.prefix(8))"
        var arguments = ["-sS", "--cacert", certificates.caCertificate, "-o", body, "-w", "%{http_code}"]
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        let status = try runProgram("/usr/bin/curl", arguments + ["https://127.0.0.1:\(port)/api/v1\(path)"])
        return (Int(status) ?? 0, FileManager.default.contents(atPath: body) ?? Data())
    }

    /// GET `path` under /api/v1 with curl: `getPage(url:)` of this server's url for it.
    func getPage(_ path: String, token: String) throws -> (status: Int, next: String?, link: String?, rows: [[String: Any]]) {
        try getPage(url: "https://127.0.0.1:\(port)/api/v1\(path)", token: token)
    }

    /// GET `url` with curl (trusting `caCertificate`, this server's CA unless given); returns the
    /// status, the `Link` header's next url as it came (`link`) and resolved against `url` as a
    /// client does (RFC 3986 5.2, `next`), and the body's array of objects.
    func getPage(url: String, token: String, caCertificate: String? = nil) throws -> (status: Int, next: String?, link: String?, rows: [[String: Any]]) {
        let body = dir.path + "/get-\(UUID().uuidString.prefix(8))"
        let headers = try runProgram("/usr/bin/curl", ["-sS", "--cacert", caCertificate ?? certificates.caCertificate, "-D", "-", "-o", body,
                                                       "-H", "Authorization: Bearer \(token)", url])
        let lines = headers.split(whereSeparator: \.isNewline)
        let status = lines.first.flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) } ?? 0
        let header = lines.first { $0.lowercased().hasPrefix("link:") }
        var link: String?
        if let header, let open = header.firstIndex(of: "<"), let close = header.firstIndex(of: ">"), header.contains("rel=\"next\"") {
            link = String(header[header.index(after: open) ..< close])
        }
        let next = link.flatMap { URL(string: $0, relativeTo: URL(string: url)) }?.absoluteString
        let data = FileManager.default.contents(atPath: body) ?? Data()
        return (status, next, link, (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] ?? [])
    }
}

@Suite(.serialized) struct ReadAPITests {
    @Test func aReadTokenReadsItsCustomersDevicesBundlesAndFiles() async throws {
        let intake = try await IntakeHarness()
        defer { intake.close() }
        try intake.start()
        let a = try SampleBundles.write(device: "r1", minutesAfter: 0, into: intake.outbox)
        let b = try SampleBundles.write(device: "r2", minutesAfter: 1, into: intake.outbox)
        #expect(await intake.pass().outcomes.count == 2)
        try intake.cli("customer", "add", "BETA")
        let read = String(try intake.cli("token", "create", "ACME", "--read").split(separator: "\n").last!)
        let betaRead = String(try intake.cli("token", "create", "BETA", "--read").split(separator: "\n").last!)

        let devices = try intake.get("/customers/ACME/devices", token: read)
        #expect(devices.status == 200)
        // Every answer: no sniffing, not stored; the report pages also a CSP.
        let headers = try runProgram("/usr/bin/curl", ["-sS", "-D", "-", "-o", "/dev/null", "--cacert", intake.certificates.caCertificate,
                                                       "-H", "Authorization: Bearer \(read)", "https://127.0.0.1:\(intake.port)/api/v1/customers/ACME/devices"]).lowercased()
        #expect(headers.contains("x-content-type-options: nosniff") && headers.contains("cache-control: no-store"), "\(headers)")
        let deviceList = try JSONSerialization.jsonObject(with: devices.body) as? [[String: Any]] ?? []
        #expect(deviceList.compactMap { $0["device"] as? String } == ["r1", "r2"])
        let bundles = try intake.get("/customers/ACME/bundles?device=r2", token: read)
        let bundleList = try JSONSerialization.jsonObject(with: bundles.body) as? [[String: Any]] ?? []
        #expect(bundleList.compactMap { $0["id"] as? String } == [b.id.uuidString])
        let one = try intake.get("/customers/ACME/bundles/\(a.id.uuidString)", token: read)
        let oneObject = try JSONSerialization.jsonObject(with: one.body) as? [String: Any]
        #expect(one.status == 200 && oneObject?["device"] as? String == "r1")
        let file = try intake.get("/customers/ACME/bundles/\(a.id.uuidString)/file", token: read)
        #expect(file.status == 200 && file.body == a.bytes)
        // HEAD answers as GET does, without the body (monitoring probes, link checkers).
        func head(_ path: String, token: String?) throws -> String {
            try runProgram("/usr/bin/curl", ["-sS", "-I", "--cacert", intake.certificates.caCertificate]
                + (token.map { ["-H", "Authorization: Bearer \($0)"] } ?? []) + ["https://127.0.0.1:\(intake.port)\(path)"]).lowercased()
        }
        let headDevices = try head("/api/v1/customers/ACME/devices", token: read)
        #expect(headDevices.hasPrefix("http/1.1 200") && headDevices.contains("content-type: application/json"), "\(headDevices)")
        #expect(try head("/api/v1/customers/ACME/bundles/\(a.id.uuidString)/file", token: read).hasPrefix("http/1.1 200"))
        #expect(try head("/api/v1/customers/ACME/devices", token: nil).hasPrefix("http/1.1 401"))
        #expect(try head("/api/v1/nowhere", token: read).hasPrefix("http/1.1 404"))
        // No such route: the documented error body and the same headers, not an empty answer.
        let nowhere = try runProgram("/usr/bin/curl", ["-sS", "-D", "-", "--cacert", intake.certificates.caCertificate,
                                                       "https://127.0.0.1:\(intake.port)/api/v1/nowhere"]).lowercased()
        #expect(nowhere.contains(" 404") && nowhere.contains("x-content-type-options: nosniff") && nowhere.contains("{\"error\":"), "\(nowhere)")
        // A stored row whose file is gone (storage unmounted): 503 saying so, not an empty 404.
        let stored = try #require(FileManager.default.enumerator(atPath: intake.dir.path)?.compactMap { $0 as? String }
            .first { $0.hasSuffix(".tar.gz") && (try? Data(contentsOf: URL(fileURLWithPath: intake.dir.path + "/" + $0))) == a.bytes && !$0.contains("outbox") })
        let aside = intake.dir.path + "/" + stored + ".aside"
        try FileManager.default.moveItem(atPath: intake.dir.path + "/" + stored, toPath: aside)
        let gone = try intake.get("/customers/ACME/bundles/\(a.id.uuidString)/file", token: read)
        #expect(gone.status == 503 && String(decoding: gone.body, as: UTF8.self).contains("cannot be read now"), "\(gone.status)")
        try FileManager.default.moveItem(atPath: aside, toPath: intake.dir.path + "/" + stored)
        // There but not what was stored (cut short): 503 before any byte, not a 200 cut off.
        let original = try Data(contentsOf: URL(fileURLWithPath: intake.dir.path + "/" + stored))
        try original.prefix(100).write(to: URL(fileURLWithPath: intake.dir.path + "/" + stored))
        #expect(try intake.get("/customers/ACME/bundles/\(a.id.uuidString)/file", token: read).status == 503)
        try original.write(to: URL(fileURLWithPath: intake.dir.path + "/" + stored))

        // Upload tokens do not read; read tokens read their own customer only; read tokens do not upload.
        #expect(try intake.get("/customers/ACME/devices", token: intake.token).status == 401)
        #expect(try intake.get("/customers/ACME/devices", token: nil).status == 401)
        #expect(try intake.get("/customers/ACME/devices", token: betaRead).status == 403)
        #expect(try intake.get("/customers/BETA/bundles/\(a.id.uuidString)", token: betaRead).status == 404)
        try (read + "\n").write(toFile: intake.upload.tokenFile!, atomically: true, encoding: .utf8)
        chmod(intake.upload.tokenFile!, 0o600)
        let c = try SampleBundles.write(device: "r3", minutesAfter: 2, into: intake.outbox)
        guard case let .failed(reason)? = await intake.pass().outcomes[c.name] else {
            Issue.record("a read token uploaded"); return
        }
        #expect(reason.contains("HTTP 401"))
    }

    /// A long listing comes a page at a time: `limit` rows, a `Link` to the next page keeping the
    /// other parameters, the pages together the whole listing in order, the last without a link.
    @Test func bundlesAreListedAPageAtATime() async throws {
        let intake = try await IntakeHarness()
        defer { intake.close() }
        try intake.start()
        var written: [String] = []
        for i in 0 ..< 5 { written.append(try SampleBundles.write(device: "r\(i % 2)", minutesAfter: Double(i), into: intake.outbox).id.uuidString) }
        #expect(await intake.pass().outcomes.count == 5)
        let read = String(try intake.cli("token", "create", "ACME", "--read").split(separator: "\n").last!)

        let whole = try intake.getPage("/customers/ACME/bundles", token: read)
        #expect(whole.status == 200 && whole.next == nil)
        #expect(whole.rows.compactMap { $0["id"] as? String } == written.reversed(), "newest collection first")
        // Followed as a client does, directly and through a reverse proxy publishing the API
        // under another prefix: the link is relative, so it leads back through the proxy.
        let proxyDirectory = intake.dir.appendingPathComponent("nginx")
        try FileManager.default.createDirectory(at: proxyDirectory, withIntermediateDirectories: true)
        let nginx = try NginxHarness(directory: proxyDirectory, upstreamPort: intake.port)
        defer { nginx.stop() }
        for (start, ca) in [("https://127.0.0.1:\(intake.port)/api/v1", intake.certificates.caCertificate),
                            (nginx.url("/care-support/api/v1"), nginx.certificates.caCertificate)] {
            var pages: [[String]] = []
            var url: String? = start + "/customers/ACME/bundles?limit=2"
            while let current = url, pages.count < 10 {
                let page = try intake.getPage(url: current, token: read, caCertificate: ca)
                #expect(page.status == 200, "\(current)")
                #expect(page.link.map { $0.hasPrefix("?") } ?? true, "a query alone: \(page.link ?? "")")
                pages.append(page.rows.compactMap { $0["id"] as? String })
                url = page.next
            }
            #expect(pages.map(\.count) == [2, 2, 1], "\(start)")
            #expect(pages.flatMap { $0 } == written.reversed(), "\(start)")
        }
        // The command line's newest few.
        #expect(try intake.json("bundles", "--customer", "ACME", "--limit", "2").compactMap { $0["id"] as? String } == Array(written.reversed().prefix(2)))
        // The device filter is kept from page to page.
        let first = try intake.getPage("/customers/ACME/bundles?device=r0&limit=2", token: read)
        let base = "https://127.0.0.1:\(intake.port)/api/v1/customers/ACME/bundles?"
        #expect(first.next?.contains("device=r0") == true && first.next?.hasPrefix(base) == true, "\(first.next ?? "")")
        let second = try intake.getPage(url: first.next!, token: read)
        #expect((first.rows + second.rows).compactMap { $0["id"] as? String } == [written[4], written[2], written[0]] && second.next == nil)
        // Cases page the same way; nonsense is refused, naming the parameter.
        #expect(try intake.getPage("/customers/ACME/cases?state=all&limit=1", token: read).status == 200)
        let badCursor = try intake.get("/customers/ACME/bundles?after=yesterday", token: read)
        #expect(badCursor.status == 400 && String(decoding: badCursor.body, as: UTF8.self).contains("after"))
        let badLimit = try intake.get("/customers/ACME/cases?limit=many", token: read)
        #expect(badLimit.status == 400 && String(decoding: badLimit.body, as: UTF8.self).contains("limit"))
    }

    /// schemathesis (PyPI) checks the live API against docs/intake-api.yaml: status codes,
    /// content types and response schemas, authentication enforced, no server errors.
    @Test func theAPIConformsToItsOpenAPIDocument() async throws {
        let intake = try await IntakeHarness()
        defer { intake.close() }
        try intake.start()
        _ = try SampleBundles.write(device: "r1", minutesAfter: 0, into: intake.outbox)
        #expect(await intake.pass().outcomes.count == 1)
        let read = String(try intake.cli("token", "create", "ACME", "--read").split(separator: "\n").last!)
        let schema = Fixtures.packageRoot.appendingPathComponent("docs/intake-api.yaml").path
        // Through a shell so that a failure shows schemathesis' own report (it writes to stdout).
        let output = try runProgram("/bin/sh", ["-c", "st \"$@\" 2>&1; echo \"exit status $?\"", "st",
            "run", schema, "--url", "https://127.0.0.1:\(intake.port)/api/v1",
            "-H", "Authorization: Bearer \(read)", "--tls-verify", intake.certificates.caCertificate,
            "--checks", "all", "--max-examples", "40", "--seed", "4242", "--no-color",
        ], environment: ProcessInfo.processInfo.environment.merging(["SCHEMATHESIS_HOOKS": ""]) { $1 })
        #expect(output.hasSuffix("exit status 0\n") && (output.contains("passed") || output.contains("No issues found")),
                "schemathesis (install it with scripts/install-deps.sh): \(output.suffix(20000))")
    }
}
