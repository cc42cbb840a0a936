package vn.kyso.dss;

import eu.europa.esig.dss.jaxb.object.Message;
import eu.europa.esig.dss.model.FileDocument;
import eu.europa.esig.dss.model.x509.CertificateToken;
import eu.europa.esig.dss.simplereport.SimpleReport;
import eu.europa.esig.dss.simplereport.jaxb.XmlTimestamp;
import eu.europa.esig.dss.spi.DSSUtils;
import eu.europa.esig.dss.spi.validation.CommonCertificateVerifier;
import eu.europa.esig.dss.spi.x509.CommonTrustedCertificateSource;
import eu.europa.esig.dss.validation.SignedDocumentValidator;
import eu.europa.esig.dss.validation.reports.Reports;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Validates PDFs with the EU DSS library (ETSI EN 319 102-1 with DSS's default validation policy), offline:
 * the given root is the only trust anchor, and no CRL, OCSP or AIA source is configured, so only what the
 * PDF carries counts. Prints one JSON object per PDF: every signature and timestamp with DSS's indication,
 * sub-indication and messages.
 *
 * <p>Usage: {@code Validate ROOT.cer [--at ISO-8601-INSTANT] FILE.pdf...}; with KYSO_DSS_DETAIL_DIR set,
 * DSS's detailed report of each PDF is written there too.
 */
public final class Validate {
    private Validate() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: Validate ROOT.cer [--at INSTANT] FILE.pdf...");
            System.exit(2);
        }
        CertificateToken root = DSSUtils.loadCertificate(new File(args[0]));
        CommonTrustedCertificateSource anchors = new CommonTrustedCertificateSource();
        anchors.addCertificate(root);
        Date at = null;
        List<String> files = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            if (args[i].equals("--at")) {
                at = Date.from(Instant.parse(args[++i]));
            } else {
                files.add(args[i]);
            }
        }
        for (String file : files) {
            CommonCertificateVerifier verifier = new CommonCertificateVerifier();
            verifier.setTrustedCertSources(anchors);
            verifier.setCrlSource(null); // offline: no online fetchers of any kind
            verifier.setOcspSource(null);
            verifier.setAIASource(null);
            SignedDocumentValidator validator = SignedDocumentValidator.fromDocument(new FileDocument(file));
            validator.setCertificateVerifier(verifier);
            if (at != null) {
                validator.setValidationTime(at);
            }
            Reports reports = validator.validateDocument();
            String detail = System.getenv("KYSO_DSS_DETAIL_DIR"); // to read why: DSS's detailed report
            if (detail != null) {
                Files.writeString(
                        Path.of(detail, Path.of(file).getFileName() + ".detailed.xml"), reports.getXmlDetailedReport());
            }
            System.out.println(report(file, reports.getSimpleReport()));
        }
    }

    private static String report(String file, SimpleReport simple) {
        StringBuilder out = new StringBuilder("{\"file\":").append(q(file)).append(",\"signatures\":[");
        List<String> ids = simple.getSignatureIdList();
        for (int i = 0; i < ids.size(); i++) {
            String id = ids.get(i);
            out.append(i == 0 ? "" : ",").append(token(simple, id))
                    .append(",\"format\":").append(q(String.valueOf(simple.getSignatureFormat(id))))
                    .append(",\"signedBy\":").append(q(simple.getSignedBy(id)))
                    .append("}");
        }
        // signature timestamps and the document (archive) timestamps over each signature
        out.append("],\"timestamps\":[");
        Set<String> seen = new LinkedHashSet<>(simple.getTimestampIdList());
        for (String id : ids) {
            for (XmlTimestamp t : simple.getSignatureTimestamps(id)) {
                seen.add(t.getId());
            }
        }
        int n = 0;
        for (String id : seen) {
            out.append(n++ == 0 ? "" : ",").append(token(simple, id))
                    .append(",\"producedBy\":").append(q(simple.getProducedBy(id)))
                    .append("}");
        }
        return out.append("]}").toString();
    }

    /** The fields every token has; the caller closes the object. */
    private static String token(SimpleReport simple, String id) {
        return "{\"id\":" + q(id)
                + ",\"indication\":" + q(String.valueOf(simple.getIndication(id)))
                + ",\"subIndication\":" + q(String.valueOf(simple.getSubIndication(id)))
                + ",\"errors\":" + messages(simple.getAdESValidationErrors(id))
                + ",\"warnings\":" + messages(simple.getAdESValidationWarnings(id));
    }

    private static String messages(List<?> list) {
        StringBuilder out = new StringBuilder("[");
        for (int i = 0; i < list.size(); i++) {
            Object m = list.get(i);
            out.append(i == 0 ? "" : ",")
                    .append(q(m instanceof Message message ? message.getKey() + ": " + message.getValue() : String.valueOf(m)));
        }
        return out.append("]").toString();
    }

    private static String q(String s) {
        if (s == null) {
            return "null";
        }
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }
}
