//! PII types validate on parse, never show their clear value through `Debug`, `Display`
//! or error messages, and round-trip in clear through serde.

use chrono::NaiveDate;
use loan_domain::pii::{BankCard, Gender, NationalId, PhoneNumber, PiiError, mask_middle};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK_CHARS: &[u8; 11] = b"10X98765432";

/// Completes a 17-digit national id body with its ISO 7064 MOD 11-2 check character.
fn with_id_check(body: &str) -> String {
    assert_eq!(
        body.len(),
        17,
        "test bug: id body {body:?} must have 17 digits"
    );
    let sum: u32 = body
        .bytes()
        .zip(ID_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = ID_CHECK_CHARS[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

/// The check character of a valid national id replaced by every other possible one.
fn wrong_id_checks(valid: &str) -> Vec<String> {
    let (body, check) = valid.split_at(17);
    ID_CHECK_CHARS
        .iter()
        .map(|c| *c as char)
        .filter(|c| c.to_string() != check)
        .map(|c| format!("{body}{c}"))
        .collect()
}

/// Completes a digit string with its Luhn check digit.
fn with_luhn_check(body: &str) -> String {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            // The check digit will sit at position 0 from the right, so the body's
            // rightmost digit is doubled.
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Customer {
    id: NationalId,
    phone: PhoneNumber,
    card: BankCard,
}

fn sample_customer() -> Customer {
    Customer {
        id: NationalId::parse("11010519491231002X").expect("well-known valid id"),
        phone: PhoneNumber::parse("+86 138 1234 5678").expect("valid phone"),
        card: BankCard::parse(&with_luhn_check("622202123456789012")).expect("valid card"),
    }
}

// ---------------------------------------------------------------------------------------
// Test helpers agree with published examples
// ---------------------------------------------------------------------------------------

#[test]
fn test_helpers_reproduce_published_check_characters() {
    assert_eq!(
        with_id_check("11010519491231002"),
        "11010519491231002X",
        "well-known GB 11643 example"
    );
    assert_eq!(
        with_luhn_check("411111111111111"),
        "4111111111111111",
        "well-known Luhn test card"
    );
    assert_eq!(
        with_luhn_check("7992739871"),
        "79927398713",
        "well-known Luhn example"
    );
}

// ---------------------------------------------------------------------------------------
// National id
// ---------------------------------------------------------------------------------------

#[test]
fn valid_national_ids_parse_and_normalise() {
    let cases = [
        // (input, stored value)
        (
            "11010519491231002X".to_owned(),
            "11010519491231002X".to_owned(),
        ),
        (
            "11010519491231002x".to_owned(),
            "11010519491231002X".to_owned(),
        ),
        (
            "  11010519491231002X\n".to_owned(),
            "11010519491231002X".to_owned(),
        ),
        (
            with_id_check("44030119900307123"),
            with_id_check("44030119900307123"),
        ),
        (
            with_id_check("31011520000229004"),
            with_id_check("31011520000229004"),
        ),
        (
            with_id_check("65010219000101001"),
            with_id_check("65010219000101001"),
        ),
        (
            with_id_check("71000020241231999"),
            with_id_check("71000020241231999"),
        ),
        (
            with_id_check("81000019751015002"),
            with_id_check("81000019751015002"),
        ),
        (
            with_id_check("82000019751015002"),
            with_id_check("82000019751015002"),
        ),
        (
            with_id_check("91000019751015002"),
            with_id_check("91000019751015002"),
        ),
    ];
    for (input, stored) in cases {
        let id =
            NationalId::parse(&input).unwrap_or_else(|e| panic!("{input:?} should be valid: {e}"));
        assert_eq!(id.expose(), stored, "stored form of {input:?}");
    }
}

#[test]
fn every_valid_province_code_is_accepted() {
    let provinces = (11..=15)
        .chain(21..=23)
        .chain(31..=37)
        .chain(41..=46)
        .chain(50..=54)
        .chain(61..=65)
        .chain([71, 81, 82, 91]);
    for province in provinces {
        let id = with_id_check(&format!("{province}010519491231002"));
        assert!(
            NationalId::parse(&id).is_ok(),
            "province {province} should be accepted"
        );
    }
}

#[test]
fn national_id_checksum_failures_are_refused() {
    let valid = [
        "11010519491231002X".to_owned(),
        with_id_check("44030119900307123"),
        with_id_check("31011520000229004"),
    ];
    for id in &valid {
        for wrong in wrong_id_checks(id) {
            assert_eq!(
                NationalId::parse(&wrong),
                Err(PiiError::NationalIdChecksum),
                "{wrong:?} has a wrong check character"
            );
        }
    }
    // A single transposed or mistyped body digit is caught by the checksum.
    let typo = "11010519491231003X";
    assert_eq!(
        NationalId::parse(typo),
        Err(PiiError::NationalIdChecksum),
        "{typo:?} has a mistyped digit"
    );
}

#[test]
fn national_ids_of_the_wrong_length_are_refused() {
    let cases = [
        ("", 0),
        ("   ", 0),
        ("11010519491231002", 17),
        ("11010519491231002X1", 19),
        ("110105194912310", 15),
        ("11010519491231002X11010519491231002X", 36),
        ("1101051949123100２", 17),
    ];
    for (input, found) in cases {
        assert_eq!(
            NationalId::parse(input),
            Err(PiiError::NationalIdLength { found }),
            "{input:?} has {found} characters"
        );
    }
}

#[test]
fn national_ids_with_bad_characters_are_refused() {
    let cases = [
        "1101051949123100XX",
        "11010519491231002Y",
        "A1010519491231002X",
        "110105 9491231002X",
        "1101051949123-002X",
        "11010519491231002é",
        "1101051949123100２X",
    ];
    for input in cases {
        assert_eq!(
            NationalId::parse(input),
            Err(PiiError::NationalIdCharacters),
            "{input:?} has a bad character"
        );
    }
}

#[test]
fn national_ids_with_a_bad_province_are_refused() {
    let bad_provinces = [
        "00", "01", "10", "16", "19", "20", "24", "30", "38", "40", "47", "49", "55", "60", "66",
        "70", "72", "80", "83", "90", "92", "99",
    ];
    for province in bad_provinces {
        // Correct checksum, so only the region is wrong.
        let id = with_id_check(&format!("{province}010519491231002"));
        assert_eq!(
            NationalId::parse(&id),
            Err(PiiError::NationalIdRegion),
            "{id:?} has province {province}"
        );
    }
}

#[test]
fn national_ids_with_impossible_birth_dates_are_refused() {
    let bad_dates = [
        ("19490230", "February 30"),
        ("20230229", "February 29 in a common year"),
        ("19000229", "1900 is not a leap year"),
        ("19491301", "month 13"),
        ("19490001", "month 0"),
        ("19491200", "day 0"),
        ("19490431", "April 31"),
        ("18991231", "before 1900"),
        ("00000101", "year 0"),
    ];
    for (date, why) in bad_dates {
        let id = with_id_check(&format!("110105{date}002"));
        assert_eq!(
            NationalId::parse(&id),
            Err(PiiError::NationalIdBirthDate),
            "{id:?}: {why}"
        );
    }
}

#[test]
fn birth_date_gender_and_region_are_extracted() {
    let cases = [
        (
            "11010519491231002",
            (1949, 12, 31),
            Gender::Female,
            "110105",
        ),
        ("44030119900307123", (1990, 3, 7), Gender::Male, "440301"),
        ("31011520000229004", (2000, 2, 29), Gender::Female, "310115"),
        ("65010219000101001", (1900, 1, 1), Gender::Male, "650102"),
        ("50010320991231989", (2099, 12, 31), Gender::Male, "500103"),
    ];
    for (body, (y, m, d), gender, region) in cases {
        let id = NationalId::parse(&with_id_check(body)).unwrap_or_else(|e| panic!("{body}: {e}"));
        let expected_date = NaiveDate::from_ymd_opt(y, m, d).expect("test date is valid");
        assert_eq!(id.birth_date(), expected_date, "birth date of {body}");
        assert_eq!(id.gender(), gender, "gender of {body}");
        assert_eq!(id.region_code(), region, "region of {body}");
    }
}

#[test]
fn national_id_mask_keeps_three_and_four() {
    let id = NationalId::parse("11010519491231002X").expect("valid");
    assert_eq!(id.masked(), "110***********002X");
    let id = NationalId::parse(&with_id_check("11010519491231123")).expect("valid");
    assert_eq!(
        id.masked(),
        format!("110***********123{}", &id.expose()[17..])
    );
}

// ---------------------------------------------------------------------------------------
// Bank card
// ---------------------------------------------------------------------------------------

#[test]
fn bank_cards_with_a_valid_luhn_check_parse() {
    let cases = [
        (
            with_luhn_check("622202123456789012"),
            with_luhn_check("622202123456789012"),
        ),
        ("4111111111111111".to_owned(), "4111111111111111".to_owned()),
        (
            "4111 1111 1111 1111".to_owned(),
            "4111111111111111".to_owned(),
        ),
        (
            "4111-1111-1111-1111".to_owned(),
            "4111111111111111".to_owned(),
        ),
        (
            " 4111 - 1111 1111-1111 ".to_owned(),
            "4111111111111111".to_owned(),
        ),
        (
            with_luhn_check("12345678901"),
            with_luhn_check("12345678901"),
        ),
        (
            with_luhn_check("623456789012345678"),
            with_luhn_check("623456789012345678"),
        ),
    ];
    for (input, stored) in cases {
        let card =
            BankCard::parse(&input).unwrap_or_else(|e| panic!("{input:?} should be valid: {e}"));
        assert_eq!(card.expose(), stored, "stored form of {input:?}");
        assert!((12..=19).contains(&card.expose().len()), "{input:?} length");
    }
}

#[test]
fn bank_cards_failing_luhn_are_refused() {
    for body in ["622202123456789012", "411111111111111", "12345678901"] {
        let valid = with_luhn_check(body);
        let good = valid.as_bytes()[valid.len() - 1] - b'0';
        for digit in (0..10).filter(|d| *d != good) {
            let wrong = format!("{body}{digit}");
            assert_eq!(
                BankCard::parse(&wrong),
                Err(PiiError::BankCardChecksum),
                "{wrong:?} has a wrong check digit"
            );
        }
    }
    // Changing any single digit is caught by Luhn.
    assert_eq!(
        BankCard::parse("4111111111111121"),
        Err(PiiError::BankCardChecksum),
        "single digit change"
    );
}

#[test]
fn bank_cards_of_the_wrong_length_or_characters_are_refused() {
    let cases = [
        ("".to_owned(), PiiError::BankCardLength { found: 0 }),
        (" - ".to_owned(), PiiError::BankCardLength { found: 0 }),
        (
            with_luhn_check("1234567890"),
            PiiError::BankCardLength { found: 11 },
        ),
        (
            with_luhn_check("1234567890123456789"),
            PiiError::BankCardLength { found: 20 },
        ),
        (
            "4111 1111 1111 111a".to_owned(),
            PiiError::BankCardCharacters,
        ),
        (
            "4111.1111.1111.1111".to_owned(),
            PiiError::BankCardCharacters,
        ),
        ("４111111111111111".to_owned(), PiiError::BankCardCharacters),
    ];
    for (input, expected) in cases {
        assert_eq!(
            BankCard::parse(&input),
            Err(expected.clone()),
            "{input:?} should fail with {expected:?}"
        );
    }
}

#[test]
fn bank_card_mask_keeps_six_and_four_and_the_length() {
    let cases = [
        ("6222021234567890128", "622202*********0128"),
        ("4111111111111111", "411111******1111"),
        ("411111111117", "411111**1117"),
    ];
    for (input, expected) in cases {
        let card = BankCard::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(card.masked(), expected, "mask of {input:?}");
        assert_eq!(
            card.masked().len(),
            input.len(),
            "mask keeps the length of {input:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Phone number
// ---------------------------------------------------------------------------------------

#[test]
fn phone_numbers_in_common_formats_parse_to_eleven_digits() {
    let cases = [
        ("13812345678", "13812345678"),
        ("+8613812345678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("+86-138-1234-5678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("  19912345678  ", "19912345678"),
        ("15000000000", "15000000000"),
    ];
    for (input, stored) in cases {
        let phone =
            PhoneNumber::parse(input).unwrap_or_else(|e| panic!("{input:?} should be valid: {e}"));
        assert_eq!(phone.expose(), stored, "stored form of {input:?}");
    }
}

#[test]
fn invalid_phone_numbers_are_refused() {
    let cases = [
        ("12812345678", PiiError::PhonePrefix),
        ("10012345678", PiiError::PhonePrefix),
        ("23812345678", PiiError::PhonePrefix),
        ("+8612812345678", PiiError::PhonePrefix),
        ("86123456789", PiiError::PhonePrefix),
        ("1381234567", PiiError::PhoneLength { found: 10 }),
        ("138123456789", PiiError::PhoneLength { found: 12 }),
        ("+86 1381234567", PiiError::PhoneLength { found: 10 }),
        ("008613812345678", PiiError::PhoneLength { found: 15 }),
        ("", PiiError::PhoneLength { found: 0 }),
        ("138-1234-567a", PiiError::PhoneCharacters),
        ("++8613812345678", PiiError::PhoneCharacters),
        ("+1 138 1234 5678", PiiError::PhoneCharacters),
        ("(138)12345678", PiiError::PhoneCharacters),
    ];
    for (input, expected) in cases {
        assert_eq!(
            PhoneNumber::parse(input),
            Err(expected.clone()),
            "{input:?} should fail with {expected:?}"
        );
    }
}

#[test]
fn phone_mask_keeps_three_and_four() {
    let phone = PhoneNumber::parse("+86 138 1234 5678").expect("valid");
    assert_eq!(phone.masked(), "138****5678");
}

// ---------------------------------------------------------------------------------------
// mask_middle
// ---------------------------------------------------------------------------------------

#[test]
fn mask_middle_is_char_safe_and_masks_short_inputs_entirely() {
    let cases = [
        ("abcdefghij", 3, 4, "abc***ghij"),
        ("abcdefgh", 3, 4, "abc*efgh"),
        ("abcdefg", 3, 4, "*******"),
        ("ab", 3, 4, "**"),
        ("", 0, 0, ""),
        ("secret", 0, 0, "******"),
        ("张三丰李四王五", 1, 1, "张*****五"),
        ("🙂🙂🙂", 1, 1, "🙂*🙂"),
    ];
    for (text, start, end, expected) in cases {
        assert_eq!(
            mask_middle(text, start, end),
            expected,
            "mask_middle({text:?}, {start}, {end})"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Never in clear: Debug, Display, errors
// ---------------------------------------------------------------------------------------

#[test]
fn debug_and_display_show_only_the_masked_form() {
    let customer = sample_customer();
    let clear = [
        customer.id.expose(),
        customer.phone.expose(),
        customer.card.expose(),
    ];
    let renderings = [
        ("id Debug", format!("{:?}", customer.id)),
        ("id Display", format!("{}", customer.id)),
        ("id alternate Debug", format!("{:#?}", customer.id)),
        ("phone Debug", format!("{:?}", customer.phone)),
        ("phone Display", format!("{}", customer.phone)),
        ("card Debug", format!("{:?}", customer.card)),
        ("card Display", format!("{}", customer.card)),
        ("customer Debug", format!("{customer:?}")),
        ("customer pretty Debug", format!("{customer:#?}")),
        ("Option Debug", format!("{:?}", Some(&customer.card))),
    ];
    for (what, rendered) in &renderings {
        for value in clear {
            assert!(
                !rendered.contains(value),
                "{what} shows a clear value: {rendered}"
            );
        }
    }
    assert_eq!(
        format!("{:?}", customer.id),
        "NationalId(\"110***********002X\")"
    );
    assert_eq!(format!("{}", customer.id), "110***********002X");
    assert_eq!(
        format!("{:?}", customer.phone),
        "PhoneNumber(\"138****5678\")"
    );
    assert_eq!(format!("{}", customer.phone), "138****5678");
    assert_eq!(
        format!("{:?}", customer.card),
        format!(
            "BankCard(\"622202*********{}\")",
            &customer.card.expose()[15..]
        )
    );
    assert_eq!(
        format!("{customer:?}"),
        format!(
            "Customer {{ id: NationalId(\"110***********002X\"), phone: PhoneNumber(\"138****5678\"), card: BankCard(\"{}\") }}",
            customer.card.masked()
        )
    );
}

#[test]
fn parse_errors_never_contain_the_input() {
    let inputs = [
        "11010519491231002Y",
        "11010519491231003X",
        "1101051949123100",
        "16010519491231002X",
        "11010519490230002X",
        "6222021234567890120",
        "62220212345678901234",
        "6222 0212 3456 789x",
        "12812345678",
        "1381234567",
        "138-1234-567a",
    ];
    for input in inputs {
        let errors = [
            NationalId::parse(input).err(),
            BankCard::parse(input).err(),
            PhoneNumber::parse(input).err(),
        ];
        for error in errors.into_iter().flatten() {
            let message = error.to_string();
            let debug = format!("{error:?}");
            assert!(
                !message.contains(input),
                "error message echoes {input:?}: {message}"
            );
            assert!(
                !debug.contains(input),
                "error Debug echoes {input:?}: {debug}"
            );
            assert!(!message.is_empty(), "error for {input:?} has a message");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Serde: clear on the wire, validated on the way in
// ---------------------------------------------------------------------------------------

#[test]
fn serde_round_trip_preserves_the_clear_value() {
    let customer = sample_customer();
    let json = serde_json::to_string(&customer).expect("serialize");
    let expected = format!(
        r#"{{"id":"11010519491231002X","phone":"13812345678","card":"{}"}}"#,
        customer.card.expose()
    );
    assert_eq!(json, expected, "serialized customer");
    let back: Customer = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, customer, "round trip");

    assert_eq!(
        serde_json::to_string(&customer.id).expect("id"),
        "\"11010519491231002X\""
    );
    assert_eq!(
        serde_json::from_str::<PhoneNumber>("\"+86 138 1234 5678\"").expect("phone"),
        customer.phone,
        "wire input is normalised by parse"
    );
    assert_eq!(
        serde_json::from_str::<NationalId>("\"11010519491231002x\"").expect("id"),
        customer.id,
        "lower-case x accepted on the wire"
    );
}

#[test]
fn deserializing_invalid_values_fails_without_echoing_them() {
    /// Deserializes JSON into one of the PII types (or a struct holding them).
    type FromJson = fn(&str) -> Result<(), serde_json::Error>;
    let id: FromJson = |json| serde_json::from_str::<NationalId>(json).map(drop);
    let card_from: FromJson = |json| serde_json::from_str::<BankCard>(json).map(drop);
    let phone: FromJson = |json| serde_json::from_str::<PhoneNumber>(json).map(drop);
    let customer: FromJson = |json| serde_json::from_str::<Customer>(json).map(drop);

    let card = with_luhn_check("622202123456789012");
    let bad_card = format!("{}{}", &card[..18], (card.as_bytes()[18] - b'0' + 1) % 10);
    let bad_date_id = with_id_check("11010519490230002");
    let struct_json =
        format!(r#"{{"id":"11010519491231002X","phone":"12812345678","card":"{card}"}}"#);
    // (what, JSON input, the secret that must not appear in the error, deserializer)
    let cases: [(&str, String, &str, FromJson); 10] = [
        (
            "id checksum",
            "\"11010519491231002Y\"".into(),
            "11010519491231002Y",
            id,
        ),
        ("id date", format!("\"{bad_date_id}\""), &bad_date_id, id),
        (
            "id as huge number",
            "110105194912310020000".into(),
            "110105194912310020000",
            id,
        ),
        ("card luhn", format!("\"{bad_card}\""), &bad_card, card_from),
        ("card as number", bad_card.clone(), &bad_card, card_from),
        ("valid card as number", card.clone(), &card, card_from),
        (
            "phone prefix",
            "\"12812345678\"".into(),
            "12812345678",
            phone,
        ),
        (
            "phone as number",
            "13812345678".into(),
            "13812345678",
            phone,
        ),
        (
            "phone as float",
            "13812345678.5".into(),
            "13812345678",
            phone,
        ),
        ("phone in a struct", struct_json, "12812345678", customer),
    ];
    for (what, json, secret, deserialize) in cases {
        let error = deserialize(&json).expect_err(what).to_string();
        assert!(
            !error.contains(secret),
            "{what}: error echoes the input: {error}"
        );
        assert!(!error.is_empty(), "{what}: error has a message");
    }

    let error = serde_json::from_str::<PhoneNumber>("\"12812345678\"")
        .expect_err("bad prefix")
        .to_string();
    assert!(
        error.contains(&PiiError::PhonePrefix.to_string()),
        "serde error carries the parse message: {error}"
    );
}

#[test]
fn json_schemas_are_write_only_sensitive_strings() {
    let schemas = [
        ("NationalId", schemars::schema_for!(NationalId)),
        ("BankCard", schemars::schema_for!(BankCard)),
        ("PhoneNumber", schemars::schema_for!(PhoneNumber)),
    ];
    for (name, schema) in schemas {
        assert_eq!(
            schema.get("type"),
            Some(&serde_json::json!("string")),
            "{name} type"
        );
        assert_eq!(
            schema.get("writeOnly"),
            Some(&serde_json::json!(true)),
            "{name} writeOnly"
        );
        assert!(
            schema
                .get("pattern")
                .and_then(|p| p.as_str())
                .is_some_and(|p| !p.is_empty()),
            "{name} pattern"
        );
        let description = schema
            .get("description")
            .and_then(|d| d.as_str())
            .unwrap_or_default();
        assert!(
            description.contains("Sensitive") && description.contains("encrypted at rest"),
            "{name} description: {description}"
        );
    }
    let gender = serde_json::to_value(schemars::schema_for!(Gender)).expect("gender schema");
    let mut allowed: Vec<&str> = gender
        .get("oneOf")
        .and_then(|variants| variants.as_array())
        .map(|variants| {
            variants
                .iter()
                .filter_map(|v| v.get("const")?.as_str())
                .collect()
        })
        .or_else(|| {
            gender
                .get("enum")?
                .as_array()
                .map(|e| e.iter().filter_map(|v| v.as_str()).collect())
        })
        .unwrap_or_default();
    allowed.sort_unstable();
    assert_eq!(allowed, ["female", "male"], "Gender schema: {gender}");
    assert_eq!(
        serde_json::to_string(&Gender::Female).expect("gender"),
        "\"female\""
    );
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

fn province() -> impl Strategy<Value = u32> {
    prop::sample::select(vec![
        11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51,
        52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 91,
    ])
}

fn valid_national_id() -> impl Strategy<Value = String> {
    (
        province(),
        0..10_000_u32,
        1900..=2099_i32,
        1..=12_u32,
        1..=28_u32,
        0..1000_u32,
    )
        .prop_map(|(p, area, y, m, d, seq)| {
            with_id_check(&format!("{p:02}{area:04}{y:04}{m:02}{d:02}{seq:03}"))
        })
}

fn valid_bank_card() -> impl Strategy<Value = String> {
    "[0-9]{11,18}".prop_map(|body| with_luhn_check(&body))
}

fn valid_phone() -> impl Strategy<Value = String> {
    "1[3-9][0-9]{9}"
}

/// Serializes to JSON and back.
fn json_round_trip<T: Serialize + for<'de> Deserialize<'de>>(value: &T) -> T {
    let json = serde_json::to_string(value).expect("serialize");
    serde_json::from_str(&json).expect("deserialize what was serialized")
}

fn assert_never_in_clear(
    clear: &str,
    masked: &str,
    debug: &str,
    display: &str,
) -> Result<(), TestCaseError> {
    prop_assert!(!masked.contains(clear), "masked {masked} contains {clear}");
    prop_assert!(!debug.contains(clear), "Debug {debug} contains {clear}");
    prop_assert!(
        !display.contains(clear),
        "Display {display} contains {clear}"
    );
    prop_assert_eq!(
        masked.chars().count(),
        clear.chars().count(),
        "mask keeps the length"
    );
    Ok(())
}

proptest! {
    #[test]
    fn parsing_arbitrary_text_never_panics(text in "\\PC*") {
        let _ = NationalId::parse(&text);
        let _ = BankCard::parse(&text);
        let _ = PhoneNumber::parse(&text);
        let _ = mask_middle(&text, 3, 4);
    }

    #[test]
    fn parsing_digit_like_text_never_panics(
        text in "[0-9Xx +\\-８]{0,24}",
        start in 0..30_usize,
        end in 0..30_usize,
    ) {
        let masks = [
            NationalId::parse(&text).map(|v| v.masked()),
            BankCard::parse(&text).map(|v| v.masked()),
            PhoneNumber::parse(&text).map(|v| v.masked()),
        ];
        for masked in masks.into_iter().flatten() {
            prop_assert!(masked.contains('*'), "masked {masked} hides something");
        }
        prop_assert_eq!(mask_middle(&text, start, end).chars().count(), text.chars().count());
    }

    #[test]
    fn valid_national_ids_never_print_in_clear(
        text in valid_national_id(),
        lower in any::<bool>(),
    ) {
        let input = if lower { text.to_lowercase() } else { text.clone() };
        let id =
            NationalId::parse(&input).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(id.expose(), text.as_str());
        assert_never_in_clear(id.expose(), &id.masked(), &format!("{id:?}"), &format!("{id}"))?;
        prop_assert_eq!(&id.masked()[..3], &text[..3]);
        prop_assert_eq!(&id.masked()[14..], &text[14..]);
        prop_assert_eq!(json_round_trip(&id), id);
    }

    #[test]
    fn valid_bank_cards_never_print_in_clear(card in valid_bank_card(), spaced in any::<bool>()) {
        let input = if spaced {
            let groups: Vec<String> =
                card.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into()).collect();
            groups.join(" ")
        } else {
            card.clone()
        };
        let parsed =
            BankCard::parse(&input).map_err(|e| TestCaseError::fail(format!("{input}: {e}")))?;
        prop_assert_eq!(parsed.expose(), card.as_str());
        let (debug, display) = (format!("{parsed:?}"), format!("{parsed}"));
        assert_never_in_clear(parsed.expose(), &parsed.masked(), &debug, &display)?;
        prop_assert_eq!(json_round_trip(&parsed), parsed);
    }

    #[test]
    fn valid_phones_never_print_in_clear(
        phone in valid_phone(),
        prefix in prop::sample::select(vec!["", "+86", "86", "+86 ", "+86-"]),
    ) {
        let input = format!("{prefix}{phone}");
        let parsed =
            PhoneNumber::parse(&input).map_err(|e| TestCaseError::fail(format!("{input}: {e}")))?;
        prop_assert_eq!(parsed.expose(), phone.as_str());
        let (debug, display) = (format!("{parsed:?}"), format!("{parsed}"));
        assert_never_in_clear(parsed.expose(), &parsed.masked(), &debug, &display)?;
        prop_assert_eq!(json_round_trip(&parsed), parsed);
    }

    #[test]
    fn a_changed_check_character_is_always_refused(
        text in valid_national_id(),
        shift in 1..11_usize,
    ) {
        let check = text.as_bytes()[17];
        let position =
            ID_CHECK_CHARS.iter().position(|c| *c == check).expect("check char from table");
        let wrong = format!("{}{}", &text[..17], ID_CHECK_CHARS[(position + shift) % 11] as char);
        prop_assert_eq!(NationalId::parse(&wrong), Err(PiiError::NationalIdChecksum));
    }
}
