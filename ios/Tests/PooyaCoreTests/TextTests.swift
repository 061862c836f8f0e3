import PooyaCore
import XCTest

/// Mirrors bindings/tests/kotlin/.../TextTest.kt: Persian digits in, typed errors with stable codes out.
final class TextTests: XCTestCase {
    func testParsesAmountsInEveryScript() throws {
        XCTAssertEqual(try parseAmount(text: "۱٬۲۵۰٬۰۰۰"), 1_250_000)
        XCTAssertEqual(try parseAmount(text: "١٬٢٥٠٬٠٠٠"), 1_250_000)
        XCTAssertEqual(try parseAmount(text: " 1,250,000 "), 1_250_000)
        XCTAssertEqual(try parseAmount(text: "18446744073709551615"), UInt64.max)
    }

    func testAmountErrorsCarryTheProblemAndCode() {
        let cases: [(String, AmountProblem)] = [
            ("", .empty),
            ("۰", .zero),
            ("1,00", .badGrouping),
            ("18446744073709551616", .tooLarge),
            ("۱۲x", .unexpectedCharacter(position: 2)),
        ]
        for (text, problem) in cases {
            XCTAssertThrowsError(try parseAmount(text: text), text) { error in
                guard case let PooyaError.InvalidAmount(reason) = error else {
                    return XCTFail("\(text): \(error)")
                }
                XCTAssertEqual(reason, problem, text)
                XCTAssertEqual((error as? PooyaError)?.code(), "invalid_amount")
                XCTAssertEqual((error as? PooyaError)?.localizationKey, "pooya.error.invalid_amount")
            }
        }
    }

    func testFormatsRoundTripThroughTheParser() throws {
        XCTAssertEqual(formatRialsFa(amount: 1_250_000), "۱٬۲۵۰٬۰۰۰")
        XCTAssertEqual(formatRials(amount: 1_250_000), "1,250,000")
        for x: UInt64 in [1, 999, 1_000, 5_000_000, 123_456_789, .max] {
            XCTAssertEqual(try parseAmount(text: formatRialsFa(amount: x)), x)
            XCTAssertEqual(try parseAmount(text: formatRials(amount: x)), x)
        }
    }

    func testNormalisesPhoneNumbers() throws {
        for typed in ["۰۹۱۲ ۳۴۵ ۶۷۸۹", "09123456789", "+98 912-345-6789", "00989123456789"] {
            XCTAssertEqual(try normalizePhone(text: typed), "+989123456789")
        }
        XCTAssertThrowsError(try normalizePhone(text: "۰۲۱ ۱۲۳۴ ۵۶۷۸")) { error in
            guard case let PooyaError.InvalidInput(field, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "phone")
            XCTAssertEqual((error as? PooyaError)?.code(), "invalid_input")
        }
    }

    func testActivationCodesAreCheckedBeforeAnyNetworkCall() throws {
        let code = Self.withLuhnDigit("123456789")
        let persian = String(code.unicodeScalars.map { Character(UnicodeScalar(0x06F0 + $0.value - 0x30)!) })
        let typed = String(persian.prefix(5)) + "-" + String(persian.dropFirst(5))
        XCTAssertEqual(try normalizeActivationCode(text: typed), code)
        XCTAssertEqual(formatActivationCode(code: code), String(code.prefix(5)) + "-" + String(code.dropFirst(5)))

        var digits = Array(code)
        digits[3] = Character(String((Int(String(digits[3]))! + 1) % 10))
        let typo = String(digits)
        XCTAssertThrowsError(try normalizeActivationCode(text: typo)) { error in
            guard case let PooyaError.InvalidInput(field, reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "code")
            XCTAssertTrue(reason.contains("check digit"), reason)
            XCTAssertFalse(String(describing: error).contains(typo))
        }
    }

    func testNoopIsCallable() {
        for _ in 0..<1000 { noop() }
    }

    /// Appends the Luhn check digit (ISO/IEC 7812-1 Annex B), computed independently of Rust.
    static func withLuhnDigit(_ payload: String) -> String {
        var sum = 0
        for (i, c) in payload.reversed().enumerated() {
            var d = Int(String(c))!
            if i % 2 == 0 {
                d *= 2
                if d > 9 { d -= 9 }
            }
            sum += d
        }
        return payload + String((10 - sum % 10) % 10)
    }
}
