package ir.pooya.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

/** The UI helpers through the generated API: Persian digits in, typed errors with stable codes out. */
class TextTest {
    @Test
    fun parsesAmountsInEveryScript() {
        assertEquals(1_250_000UL, parseAmount("۱٬۲۵۰٬۰۰۰"))
        assertEquals(1_250_000UL, parseAmount("١٬٢٥٠٬٠٠٠"))
        assertEquals(1_250_000UL, parseAmount(" 1,250,000 "))
        assertEquals(ULong.MAX_VALUE, parseAmount("18446744073709551615"))
    }

    @Test
    fun amountErrorsCarryTheProblemAndCode() {
        val cases = mapOf(
            "" to AmountProblem.Empty,
            "۰" to AmountProblem.Zero,
            "1,00" to AmountProblem.BadGrouping,
            "18446744073709551616" to AmountProblem.TooLarge,
            "۱۲x" to AmountProblem.UnexpectedCharacter(2u),
        )
        for ((text, problem) in cases) {
            val e = expectThrows<PooyaException.InvalidAmount> { parseAmount(text) }
            assertEquals(text, problem, e.reason)
            assertEquals("invalid_amount", e.code())
        }
    }

    @Test
    fun formatsRoundTripThroughTheParser() {
        assertEquals("۱٬۲۵۰٬۰۰۰", formatRialsFa(1_250_000UL))
        assertEquals("1,250,000", formatRials(1_250_000UL))
        for (x in listOf(1UL, 999UL, 1_000UL, 5_000_000UL, 123_456_789UL, ULong.MAX_VALUE)) {
            assertEquals(x, parseAmount(formatRialsFa(x)))
            assertEquals(x, parseAmount(formatRials(x)))
        }
    }

    @Test
    fun normalisesPhoneNumbers() {
        for (typed in listOf("۰۹۱۲ ۳۴۵ ۶۷۸۹", "09123456789", "+98 912-345-6789", "00989123456789")) {
            assertEquals("+989123456789", normalizePhone(typed))
        }
        val e = expectThrows<PooyaException.InvalidInput> { normalizePhone("۰۲۱ ۱۲۳۴ ۵۶۷۸") }
        assertEquals("phone", e.field)
        assertEquals("invalid_input", e.code())
        assertTrue(e.toString(), e.toString().startsWith("invalid phone:"))
    }

    @Test
    fun activationCodesAreCheckedBeforeAnyNetworkCall() {
        val code = withLuhnDigit("123456789")
        val persian = code.map { '۰' + (it - '0') }.joinToString("")
        val typed = persian.substring(0, 5) + "-" + persian.substring(5)
        assertEquals(code, normalizeActivationCode(typed))
        assertEquals(code.substring(0, 5) + "-" + code.substring(5), formatActivationCode(code))

        val typo = code.substring(0, 3) + ((code[3] - '0' + 1) % 10) + code.substring(4)
        val e = expectThrows<PooyaException.InvalidInput> { normalizeActivationCode(typo) }
        assertEquals("code", e.field)
        assertTrue(e.reason, e.reason.contains("check digit"))
        // The error never echoes what was typed.
        assertTrue(!e.toString().contains(typo))
    }

    @Test
    fun twoChannelCodesJoinAndAMistypedPartIsCaught() {
        val code = withLuhnDigit("123456789")
        val persian = code.map { '۰' + (it - '0') }.joinToString("")
        // The ATM shows the first five digits, the SMS carries the rest; typed either way.
        assertEquals(code, joinActivationCode(code.take(5), code.drop(5)))
        assertEquals(code, joinActivationCode(persian.take(5), persian.drop(5).chunked(3).joinToString("-")))
        assertEquals(code, joinActivationCode(code.take(4), code.drop(4)))

        val mistyped = mapOf(
            "a digit of the ATM part" to (code.take(1) + bump(code[1]) + code.substring(2, 5) to code.drop(5)),
            "a digit of the SMS part" to (code.take(5) to code.substring(5, 9) + bump(code[9])),
            "the parts swapped" to (code.drop(5) to code.take(5)),
            "the ATM part missing" to ("" to code),
            "the SMS part missing" to (code to ""),
            "a letter" to (code.take(4) + "O" to code.drop(5)),
        )
        for ((what, parts) in mistyped) {
            val e = expectThrows<PooyaException.InvalidInput> { joinActivationCode(parts.first, parts.second) }
            assertEquals(what, "code", e.field)
            assertEquals(what, "invalid_input", e.code())
            // The error never echoes what was typed.
            assertTrue(what, !e.toString().contains(parts.first + parts.second))
        }
    }

    /** The digit after [d], wrapping 9 to 0: a typo the Luhn check digit always catches. */
    private fun bump(d: Char): Char = '0' + (d - '0' + 1) % 10

    @Test
    fun noopIsCallable() {
        repeat(1000) { noop() }
    }

    /** Appends the Luhn check digit (ISO/IEC 7812-1 Annex B), computed here independently of Rust. */
    private fun withLuhnDigit(payload: String): String {
        var sum = 0
        payload.reversed().forEachIndexed { i, c ->
            var d = c - '0'
            if (i % 2 == 0) {
                d *= 2
                if (d > 9) d -= 9
            }
            sum += d
        }
        return payload + ((10 - sum % 10) % 10)
    }
}
