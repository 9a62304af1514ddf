import Crypto
import Foundation

/// One self-contained HTML page per report: inline style and script, no external resource, a
/// summary at the top, tables sortable by clicking a header and filtered by a text box, rows
/// coloured by verdict/status/severity, every row's reason visible. The page and table builders
/// are public so that other views (the support side's notifications) look the same.
public enum HTMLReport {
    public static func escape(_ s: String?) -> String {
        guard let s else { return "" }
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// The CSP source of the one script every page carries (`'sha256-...'`): a page may run it
    /// and nothing else, so text a device or bundle supplied can never run as script, even if
    /// one escape were missed.
    public static let scriptSource: String = "'sha256-\(Data(SHA256.hash(data: Data(script.utf8))).base64EncodedString())'"

    static let style = """
    body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
    h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.4em 0 .4em}
    .summary{display:flex;gap:1em;flex-wrap:wrap;margin:.6em 0}
    .card{border:1px solid #ccc;border-radius:6px;padding:.5em .9em;min-width:8em}
    .card b{display:block;font-size:1.5em}
    input.filter{padding:.35em;width:28em;max-width:100%;margin:.4em 0}
    table{border-collapse:collapse;width:100%}th,td{border:1px solid #ddd;padding:.3em .45em;vertical-align:top;text-align:left}
    th{background:#f3f3f3;cursor:pointer;user-select:none;white-space:nowrap}th.asc:after{content:" \\25B2"}th.desc:after{content:" \\25BC"}
    td.reason{max-width:48em}
    tr.exposed td.flag,tr.past td.flag,tr.critical td.flag{background:#f8c9c4}
    tr.possibly-exposed td.flag,tr.within td.flag,tr.warning td.flag{background:#fde7b0}
    tr.not-exposed-config td.flag,tr.supported td.flag,tr.info td.flag{background:#d5efd5}
    tr.unknown td.flag{background:#e4e4e4}
    .warn{color:#8a4b00}
    """

    static let script = """
    document.querySelectorAll('table.report').forEach(function(table){
      var heads=table.querySelectorAll('th');
      heads.forEach(function(th,col){th.addEventListener('click',function(){
        var asc=!th.classList.contains('asc');heads.forEach(function(h){h.classList.remove('asc','desc')});
        th.classList.add(asc?'asc':'desc');var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(a,b){var x=a.cells[col].getAttribute('data-sort')||a.cells[col].textContent;
          var y=b.cells[col].getAttribute('data-sort')||b.cells[col].textContent;
          x=x.trim();y=y.trim();if(!x||!y){return x?-1:y?1:0;}
          var sev=/^(CRITICAL|HIGH|MEDIUM|LOW|NONE)\\b\\s*([0-9.]+)?/i,sx=sev.exec(x),sy=sev.exec(y);
          if(sx&&sy){var rk={none:0,low:1,medium:2,high:3,critical:4};x=String(rk[sx[1].toLowerCase()]*100+parseFloat(sx[2]||0));y=String(rk[sy[1].toLowerCase()]*100+parseFloat(sy[2]||0));}
          var d=/^\\d{4}-\\d\\d-\\d\\d/,n=/^-?[0-9.]+( ?%| ?°C)?( used)?$/,r;
          if(d.test(x)&&d.test(y))r=x<y?-1:x>y?1:0;else if(n.test(x)&&n.test(y))r=parseFloat(x)-parseFloat(y);
          else r=x.localeCompare(y,undefined,{numeric:true,sensitivity:'base'});return asc?r:-r});
        rows.forEach(function(r){body.appendChild(r)});});});
    });
    document.querySelectorAll('input.filter').forEach(function(input){
      input.addEventListener('input',function(){var q=input.value.toLowerCase();
        var table=document.getElementById(input.getAttribute('data-table'));
        Array.prototype.forEach.call(table.tBodies[0].rows,function(r){r.style.display=r.textContent.toLowerCase().indexOf(q)>=0?'':'none'});});
    });
    // A link can carry a filter and a sort: report.html#filter=edge-1&sort=-Severity (the first
    // table; a leading - sorts descending).
    (function(){var m=/[#&]filter=([^&]*)/.exec(location.hash);var input=document.querySelector('input.filter');
      if(m&&input){input.value=decodeURIComponent(m[1]);input.dispatchEvent(new Event('input'));}
      var o=/[#&]sort=([^&]*)/.exec(location.hash);var table=document.querySelector('table.report');
      if(o&&table){var name=decodeURIComponent(o[1]),desc=name.charAt(0)==='-';if(desc)name=name.slice(1);
        table.querySelectorAll('th').forEach(function(th){if(th.textContent.toLowerCase()===name.toLowerCase()){th.click();if(desc)th.click();}});}})();
    """

    /// A whole page: `summary` cards (label, value) above the `sections` HTML.
    public static func page(title: String, summary: [(String, String)], sections: String) -> String {
        let cards = summary.map { "<div class=\"card\"><b>\(escape($0.1))</b>\(escape($0.0))</div>" }.joined()
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
        <meta name="viewport" content="width=device-width,initial-scale=1">
        <style>\(style)</style></head>
        <body><h1>\(escape(title))</h1>
        <div class="summary" id="summary">\(cards)</div>
        \(sections)
        <script>\(script)</script>
        </body></html>

        """
    }

    /// A sortable, filterable table; each row's class colours its `flag` cells.
    public static func table(id: String, headers: [String], rows: [(cssClass: String, cells: [(text: String?, cssClass: String?)])]) -> String {
        var out = "<input class=\"filter\" type=\"search\" placeholder=\"Filter rows\" data-table=\"\(id)\" aria-label=\"Filter\">\n"
        out += "<table class=\"report\" id=\"\(id)\"><thead><tr>"
        out += headers.map { "<th>\(escape($0))</th>" }.joined()
        out += "</tr></thead><tbody>\n"
        for row in rows {
            out += "<tr class=\"\(escape(row.cssClass))\">"
            for cell in row.cells {
                out += "<td\(cell.cssClass.map { " class=\"\($0)\"" } ?? "")>\(escape(cell.text))</td>"
            }
            out += "</tr>\n"
        }
        return out + "</tbody></table>\n"
    }

    static func bugs(_ r: BugReport) -> String {
        // What needs action first: exposed, then possibly exposed, then not exposed; the most
        // severe advisory first within each (headers still re-sort on click).
        let rank: [BugVerdict: Int] = [.exposed: 0, .possiblyExposed: 1, .notExposedConfig: 2]
        let ordered = r.findings.enumerated().sorted { a, b in
            let (x, y) = (a.element, b.element)
            if rank[x.verdict]! != rank[y.verdict]! { return rank[x.verdict]! < rank[y.verdict]! }
            if (x.cvss ?? -1) != (y.cvss ?? -1) { return (x.cvss ?? -1) > (y.cvss ?? -1) }
            return a.offset < b.offset
        }.map(\.element)
        let rows = ordered.map { f in
            (f.verdict.rawValue, [(f.verdict.rawValue, "flag"), (f.device, nil), (f.model, nil), (f.versions?.joined(separator: ", ") ?? f.version, nil),
                                  (f.cve, nil), (f.jsa, nil), (f.severity, nil), (f.fixedIn, nil), (f.reason, "reason"),
                                  (f.dataWarning, "warn"), (f.title, nil)] as [(String?, String?)])
        }
        var sections = "<h2>Findings</h2>\n" + table(id: "bugs", headers: ["Verdict", "Device", "Model", "Version", "CVE", "JSA", "Severity", "Fixed in", "Reason", "Data warning", "Title"], rows: rows)
        if !r.notEvaluated.isEmpty {
            sections += "<h2>Devices not evaluated</h2>\n" + table(id: "not-evaluated", headers: ["Device", "Why"],
                                                                   rows: r.notEvaluated.map { ("unknown", [($0.device, "flag"), ($0.reason, "reason")]) })
        }
        if !r.dataWarnings.isEmpty {
            sections += "<h2>Data warnings</h2>\n" + table(id: "warnings", headers: ["CVE", "Kind", "What is inconsistent", "How it was read"],
                                                          rows: r.dataWarnings.map { ("warning", [($0.cve, nil), ($0.kind.rawValue, "flag"), ($0.detail, nil), ($0.reading, nil)]) })
        }
        if !r.dataProblems.isEmpty {
            sections += "<h2>Data problems</h2>\n" + table(id: "problems", headers: ["File", "Field", "Problem"],
                                                          rows: r.dataProblems.map { ("warning", [($0.file, nil), ($0.field, nil), ($0.message, nil)]) })
        }
        return page(title: "care-agent bug report", summary: [
            ("devices", "\(r.deviceCount)"), ("exposed", "\(r.count(.exposed))"), ("possibly exposed", "\(r.count(.possiblyExposed))"),
            ("not exposed (config)", "\(r.count(.notExposedConfig))"), ("unaffected pairs", "\(r.unaffectedCount)"),
            ("devices not evaluated", "\(r.notEvaluated.count)"),
            ("data warnings", "\(r.dataWarnings.count)"),
        ], sections: sections)
    }

    static func lifecycle(_ r: LifecycleReport) -> String {
        let rows = r.items.map { i in
            (i.status.rawValue, [(i.status.rawValue, "flag"), (i.device, nil), (i.kind.rawValue, nil), (i.name, nil), (i.model, nil),
                                 (i.partNumber, nil), (i.serial, nil), (i.train, nil), (i.endOfEngineering?.description, nil),
                                 (i.endOfNewJunosReleaseSupport?.description, nil), (i.endOfSupport?.description, nil), (i.eolAnnounce?.description, nil), (i.lastOrder?.description, nil),
                                 (i.replacement, nil), (i.source, "reason")] as [(String?, String?)])
        }
        var sections = "<h2>Items</h2>\n" + table(id: "eol", headers: ["Status", "Device", "Kind", "Name", "Model", "Part number", "Serial", "Train",
                                                                     "End of engineering", "End of new Junos release support", "End of support", "EOL announce", "Last order", "Replacement", "Source"], rows: rows)
        if !r.dataProblems.isEmpty {
            sections += "<h2>Data problems</h2>\n" + table(id: "problems", headers: ["File", "Field", "Problem"],
                                                          rows: r.dataProblems.map { ("warning", [($0.file, nil), ($0.field, nil), ($0.message, nil)]) })
        }
        return page(title: "care-agent EOL/EOS/EOE report (\(r.today), window \(r.windowMonths) months)", summary: [
            ("devices", "\(r.deviceCount)"), ("past end of support", "\(r.count(.past))"),
            ("end of support within \(r.windowMonths) months", "\(r.count(.within))"), ("supported", "\(r.count(.supported))"), ("unknown", "\(r.count(.unknown))"),
        ], sections: sections)
    }

    static func health(_ r: HealthReport) -> String {
        // What needs action first: critical, then warning, then info (device order within each).
        let ordered = r.findings.enumerated().sorted { a, b in
            a.element.severity != b.element.severity ? a.element.severity > b.element.severity : a.offset < b.offset
        }.map(\.element)
        let rows = ordered.map { f in
            (f.severity.rawValue, [(f.severity.rawValue, "flag"), (f.device, nil), (f.check, nil), (f.message, "reason"), (f.action, "reason"),
                                   (f.fact, nil), (f.value, nil), (f.threshold, nil)] as [(String?, String?)])
        }
        var sections = "<h2>Findings</h2>\n" + table(id: "health", headers: ["Severity", "Device", "Check", "Finding", "What to do", "Fact", "Value", "Threshold"], rows: rows)
        let dateFormat = ISO8601DateFormatter()
        let deviceRows = r.devices.map { d in
            let state = d.worst?.rawValue ?? "ok"
            return (d.worst?.rawValue ?? "supported", [(state, "flag"), (d.device, nil), (d.model, nil), (dateFormat.string(from: d.collected), nil),
                                                       (d.notChecked.isEmpty ? "everything" : "all but " + d.notChecked.joined(separator: ", "), nil)] as [(String?, String?)])
        }
        sections += "<h2>Devices</h2>\n" + table(id: "devices", headers: ["Worst", "Device", "Model", "Collected", "Checked"], rows: deviceRows)
        return page(title: "care-agent health report", summary: [
            ("devices", "\(r.deviceCount)"), ("critical", "\(r.count(.critical))"), ("warning", "\(r.count(.warning))"), ("info", "\(r.count(.info))"),
            ("devices without findings", "\(r.devices.filter { $0.worst == nil }.count)"),
        ], sections: sections)
    }
}
