//! The synthetic borrowers: who they are, what they earn and owe, how creditworthy they
//! look, and what they will ask for.
//!
//! Everything is drawn from the seeded generator, so the same seed gives the same people
//! (same ids, names, numbers). Identity numbers are valid (the domain's own parsers are
//! the oracle for the check characters, so the demo cannot drift from the validation) but
//! synthetic: never a real person's. Money is drawn as whole yuan and turned into
//! [`Money`] exactly; no floating point anywhere.

use chrono::{Datelike as _, NaiveDate};
use loan_domain::Money;
use loan_domain::pii::{BankCard, NationalId};
use rand::Rng as _;
use rand::seq::IndexedRandom as _;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use uuid::Uuid;

/// Acquisition channels, with their weights: where a lender's customers come from.
pub const CHANNELS: [(&str, u32); 5] = [
    ("app", 40),
    ("branch", 20),
    ("broker:acme", 15),
    ("partner:wechat", 15),
    ("referral", 10),
];

/// Regions of residence, with the province code that starts their national ids.
pub const REGIONS: [(&str, &str, u32); 6] = [
    ("beijing", "110105", 18),
    ("shanghai", "310104", 18),
    ("guangdong", "440106", 22),
    ("zhejiang", "330106", 14),
    ("sichuan", "510107", 16),
    ("hubei", "420106", 12),
];

const SURNAMES: [&str; 16] = [
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma",
    "Zhu", "Hu", "Guo",
];
const GIVEN_NAMES: [&str; 20] = [
    "Wei", "Fang", "Na", "Min", "Jing", "Lei", "Jun", "Yan", "Tao", "Hui", "Qiang", "Li", "Ping",
    "Gang", "Xiu", "Hong", "Bo", "Yun", "Kai", "Ning",
];
const EMPLOYERS: [&str; 10] = [
    "Acme Trading",
    "Sunrise Logistics",
    "Jade Hospital",
    "Pearl River Foods",
    "Eastern Grid",
    "Harbour Shipping",
    "Lotus Software",
    "City School No. 3",
    "Golden Textile",
    "Summit Construction",
];

/// How a borrower repays, drawn once per loan (riskier borrowers are likelier to slip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Habit {
    /// Pays each installment on its due date or a few days early.
    Punctual,
    /// Pays each installment, a few days to a few weeks late (penalty included).
    Late,
    /// Pays each installment, sometimes only part of it; catches up later.
    Partial,
    /// Stops paying at some installment; later either cures (pays the arrears) or is
    /// written off.
    Defaulter,
    /// Pays on time, then settles the whole loan early.
    Prepayer,
}

/// One synthetic borrower.
#[derive(Debug, Clone)]
pub struct Borrower {
    pub customer_id: Uuid,
    pub name: String,
    pub gender: &'static str,
    pub birth_date: NaiveDate,
    pub national_id: String,
    pub phone: String,
    pub bank_card: String,
    pub region: &'static str,
    pub channel: &'static str,
    pub employer: Option<&'static str>,
    pub risk_appetite: &'static str,
    pub monthly_income: Money,
    pub monthly_debt_payments: Money,
    pub total_assets: Money,
    pub total_liabilities: Money,
    /// Bureau score, 300..=900; `None` for a thin file (the policy refers those).
    pub credit_score: Option<u16>,
    /// Whether identity verification succeeds (disbursement needs it).
    pub verifiable: bool,
}

/// What a borrower asks for.
#[derive(Debug, Clone)]
pub struct Application {
    pub loan_id: Uuid,
    pub purpose: &'static str,
    pub requested_amount: Money,
    pub term_months: u32,
}

/// Draws from `(item, weight)` pairs.
pub fn weighted<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, weight)| weight).sum();
    let mut pick = rng.random_range(0..total.max(1));
    for (item, weight) in items {
        if pick < *weight {
            return *item;
        }
        pick -= weight;
    }
    items[0].0
}

/// A uuid from the seeded generator (v4 layout), so ids repeat with the seed.
pub fn seeded_uuid(rng: &mut ChaCha8Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// Whole yuan as money (exact).
pub fn yuan(amount: u64) -> Money {
    Money::round(Decimal::from(amount))
}

/// A synthetic borrower.
pub fn borrower(rng: &mut ChaCha8Rng) -> Borrower {
    let customer_id = seeded_uuid(rng);
    let (region, region_code) = weighted(
        rng,
        &REGIONS.map(|(name, code, weight)| ((name, code), weight)),
    );
    let channel = weighted(rng, &CHANNELS);
    let birth_date = NaiveDate::from_ymd_opt(rng.random_range(1966..=2003), 1, 1)
        .and_then(|start| start.checked_add_days(chrono::Days::new(rng.random_range(0..365))))
        .unwrap_or_default();
    let male = rng.random_range(0..2) == 1;
    let national_id = national_id(rng, region_code, birth_date, male);
    let name = format!(
        "{} {}",
        SURNAMES.choose(rng).copied().unwrap_or("Wang"),
        GIVEN_NAMES.choose(rng).copied().unwrap_or("Wei")
    );
    // Income: a skewed distribution from a few tiers, whole hundreds of yuan.
    let income_hundreds: u64 = match rng.random_range(0..100) {
        0..=9 => rng.random_range(20..40), // 2,000–4,000: some below the policy minimum
        10..=54 => rng.random_range(40..120), // 4,000–12,000
        55..=84 => rng.random_range(120..300), // 12,000–30,000
        _ => rng.random_range(300..900),   // 30,000–90,000
    };
    let income = income_hundreds * 100;
    let debt = income * rng.random_range(0..35) / 100 / 10 * 10;
    let assets = income * rng.random_range(0..60);
    let liabilities = assets * rng.random_range(0..70) / 100;
    let employed = rng.random_range(0..100) < 85;
    let credit_score = (rng.random_range(0..100) >= 6).then(|| {
        // Mostly 600–800, a tail down to 420.
        let base: u16 = rng.random_range(600..=800);
        if rng.random_range(0..100) < 15 {
            base - rng.random_range(80..=180)
        } else {
            base
        }
    });
    Borrower {
        customer_id,
        name,
        gender: if male { "male" } else { "female" },
        birth_date,
        national_id,
        phone: format!(
            "1{}{:09}",
            [3, 5, 7, 8, 9].choose(rng).copied().unwrap_or(3),
            rng.random_range(0..1_000_000_000_u64)
        ),
        bank_card: bank_card(rng),
        region,
        channel,
        employer: employed.then(|| EMPLOYERS.choose(rng).copied().unwrap_or(EMPLOYERS[0])),
        risk_appetite: weighted(
            rng,
            &[("conservative", 35), ("balanced", 45), ("aggressive", 20)],
        ),
        monthly_income: yuan(income),
        monthly_debt_payments: yuan(debt),
        total_assets: yuan(assets),
        total_liabilities: yuan(liabilities),
        credit_score,
        verifiable: rng.random_range(0..100) < 97,
    }
}

/// What the borrower applies for: consumer loans are smaller and shorter than business
/// loans; amounts scale with income.
pub fn application(rng: &mut ChaCha8Rng, borrower: &Borrower) -> Application {
    let business = rng.random_range(0..100) < 25;
    let income = borrower.monthly_income.amount();
    // Requests scale with income (months of income), as lenders' affordability checks
    // push applicants to ask.
    let multiple = if business {
        rng.random_range(2..=8)
    } else {
        rng.random_range(1..=4)
    };
    // Whole thousands, between 3,000 and 500,000.
    let thousands = (income * Decimal::from(multiple) / Decimal::from(1000))
        .trunc()
        .try_into()
        .unwrap_or(3_u64)
        .clamp(3, 500);
    let term_months = if business {
        *[12, 24, 36].choose(rng).unwrap_or(&24)
    } else {
        *[12, 12, 24, 24, 36].choose(rng).unwrap_or(&12)
    };
    Application {
        loan_id: seeded_uuid(rng),
        purpose: if business { "business" } else { "consumer" },
        requested_amount: yuan(thousands * 1000),
        term_months,
    }
}

/// The borrower's repayment habit on one loan: worse scores slip more often.
pub fn habit(rng: &mut ChaCha8Rng, credit_score: Option<u16>) -> Habit {
    let risky = credit_score.is_none_or(|score| score < 640);
    let weights: [(Habit, u32); 5] = if risky {
        [
            (Habit::Punctual, 45),
            (Habit::Late, 20),
            (Habit::Partial, 10),
            (Habit::Defaulter, 20),
            (Habit::Prepayer, 5),
        ]
    } else {
        [
            (Habit::Punctual, 68),
            (Habit::Late, 12),
            (Habit::Partial, 6),
            (Habit::Defaulter, 6),
            (Habit::Prepayer, 8),
        ]
    };
    weighted(rng, &weights)
}

/// A valid national id for the region, birth date and gender: the check character is the
/// one the domain's parser accepts.
fn national_id(rng: &mut ChaCha8Rng, region_code: &str, birth: NaiveDate, male: bool) -> String {
    let sequence: u32 = rng.random_range(0..500) * 2 + u32::from(male);
    let body = format!(
        "{region_code}{:04}{:02}{:02}{sequence:03}",
        birth.year(),
        birth.month(),
        birth.day()
    );
    "0123456789X"
        .chars()
        .map(|check| format!("{body}{check}"))
        .find(|candidate| NationalId::parse(candidate).is_ok())
        .unwrap_or(body)
}

/// A valid 19-digit UnionPay-style card number (Luhn check digit from the domain's parser).
fn bank_card(rng: &mut ChaCha8Rng) -> String {
    let body = format!("622202{:012}", rng.random_range(0..1_000_000_000_000_u64));
    (0..10)
        .map(|check| format!("{body}{check}"))
        .find(|candidate| BankCard::parse(candidate).is_ok())
        .unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    #[test]
    fn borrowers_carry_valid_identity_numbers_matching_their_profile() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let person = borrower(&mut rng);
            let id = NationalId::parse(&person.national_id).expect("valid national id");
            assert_eq!(id.birth_date(), person.birth_date);
            assert_eq!(
                format!("{:?}", id.gender()).to_lowercase(),
                person.gender,
                "gender digit matches"
            );
            BankCard::parse(&person.bank_card).expect("valid card");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_people() {
        let first: Vec<_> = {
            let mut rng = ChaCha8Rng::seed_from_u64(42);
            (0..20).map(|_| borrower(&mut rng).national_id).collect()
        };
        let again: Vec<_> = {
            let mut rng = ChaCha8Rng::seed_from_u64(42);
            (0..20).map(|_| borrower(&mut rng).national_id).collect()
        };
        assert_eq!(first, again);
        let other: Vec<_> = {
            let mut rng = ChaCha8Rng::seed_from_u64(43);
            (0..20).map(|_| borrower(&mut rng).national_id).collect()
        };
        assert_ne!(first, other);
    }
}
