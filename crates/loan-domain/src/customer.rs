//! The customer aggregate: who borrows, what they earn and owe, how risky they are.
//!
//! Registration validates what a lender validates: the resident ID checksum (in
//! [`crate::pii`]), that the birth date and gender agree with the ID, an adult age,
//! non-negative financial figures. Contact, employment and financials change over time;
//! credit assessments accumulate (the latest one counts); identity verification is a
//! one-way flag that disbursement depends on.
//!
//! **Erasure.** A data protection officer can erase a customer (`erase_customer`): the
//! engine destroys the customer's data key, so the encrypted national ID, bank card and
//! phone in the history can no longer be read anywhere (crypto-shredding). The history
//! itself stays intact and replayable: events carry these values as [`Sensitive`], which
//! the engine's loader decodes as [`Sensitive::Erased`] once the key is gone, and the
//! `customer_erased` event moves the customer to [`Customer::Erased`], in which no
//! further customer command is accepted and no new lending is allowed (the customer's
//! existing loans keep being serviced).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use chrono::{Datelike, NaiveDate};
use schemars::JsonSchema;
use serde::de::{self, IntoDeserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};

use crate::access::CommandKind;
use crate::error::DomainError;
use crate::ids::CustomerId;
use crate::money::Money;
use crate::pii::{BankCard, Gender, NationalId, PhoneNumber};
use crate::policy::{self, RiskGrade, ValueTier};
use crate::{Context, text};

/// Youngest and oldest age at registration.
pub const MIN_AGE: i32 = 18;
pub const MAX_AGE: i32 = 75;
/// Credit score range accepted (covers PBOC-style and FICO-style scales).
pub const MIN_CREDIT_SCORE: u16 = 300;
pub const MAX_CREDIT_SCORE: u16 = 900;

/// What an erased sensitive value shows as: in `Display`, and on the wire in place of the
/// value.
pub const ERASED: &str = "erased";

/// A sensitive value (national ID, bank card, phone) as far as it is still known: the
/// value, or [`Sensitive::Erased`] once the customer was crypto-shredded and its data key
/// destroyed.
///
/// On the wire a known value is the value itself (the contract form of events did not
/// change when erasure was introduced) and an erased one is the string `"erased"`, which
/// no valid national ID, card or phone number can be. `Debug` and `Display` show no more
/// than the value's own masked form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sensitive<T> {
    Known(T),
    Erased,
}

impl<T> Sensitive<T> {
    /// The value, unless it was erased.
    pub fn known(&self) -> Option<&T> {
        match self {
            Sensitive::Known(value) => Some(value),
            Sensitive::Erased => None,
        }
    }

    pub fn is_erased(&self) -> bool {
        matches!(self, Sensitive::Erased)
    }
}

impl<T> From<T> for Sensitive<T> {
    fn from(value: T) -> Self {
        Sensitive::Known(value)
    }
}

impl<T: fmt::Display> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sensitive::Known(value) => value.fmt(f),
            Sensitive::Erased => f.pad(ERASED),
        }
    }
}

impl<T: Serialize> Serialize for Sensitive<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Sensitive::Known(value) => value.serialize(serializer),
            Sensitive::Erased => serializer.serialize_str(ERASED),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sensitive<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let visitor = SensitiveVisitor(PhantomData);
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(visitor)
        } else {
            deserializer.deserialize_str(visitor)
        }
    }
}

/// Accepts `"erased"` or whatever string `T` accepts; refuses non-strings without echoing
/// them (they may be a card number sent as a number).
struct SensitiveVisitor<T>(PhantomData<T>);

/// The refusal of a non-string, which never echoes it.
fn not_a_string<T, E: de::Error>(expected: &dyn de::Expected) -> Result<Sensitive<T>, E> {
    Err(E::invalid_type(
        Unexpected::Other("a non-string value"),
        expected,
    ))
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for SensitiveVisitor<T> {
    type Value = Sensitive<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a sensitive value as a string, or \"erased\"")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        if value == ERASED {
            return Ok(Sensitive::Erased);
        }
        let inner: de::value::StrDeserializer<'_, E> = value.into_deserializer();
        T::deserialize(inner).map(Sensitive::Known)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        not_a_string(&self)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        not_a_string(&self)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        not_a_string(&self)
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Self::Value, E> {
        not_a_string(&self)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Self::Value, E> {
        not_a_string(&self)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        not_a_string(&self)
    }
}

impl<T: JsonSchema> JsonSchema for Sensitive<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("Sensitive_{}", T::schema_name()).into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let known = generator.subschema_for::<T>();
        schemars::json_schema!({
            "description": "The value, or \"erased\" once the customer was crypto-shredded. This describes the event as the engine decodes it; in the event log the value is stored encrypted (an object {enc, key, nonce, ct}, see docs/security.md).",
            "anyOf": [
                known,
                {
                    "const": ERASED,
                    "description": "The value was crypto-shredded: the customer was erased and the key that encrypted it destroyed."
                }
            ]
        })
    }
}

/// How much risk the customer says they accept (from the suitability questionnaire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskAppetite {
    Conservative,
    Balanced,
    Aggressive,
}

/// Monthly and balance-sheet figures of the customer, all non-negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Financials {
    pub monthly_income: Money,
    /// Installments the customer already pays each month on other debts.
    pub monthly_debt_payments: Money,
    pub total_assets: Money,
    pub total_liabilities: Money,
}

impl Financials {
    fn validate(&self, prefix: &str) -> Result<(), DomainError> {
        let fields = [
            ("monthly_income", self.monthly_income),
            ("monthly_debt_payments", self.monthly_debt_payments),
            ("total_assets", self.total_assets),
            ("total_liabilities", self.total_liabilities),
        ];
        for (name, value) in fields {
            if value.is_negative() {
                return Err(DomainError::validation(
                    format!("{prefix}.{name}"),
                    "must not be negative",
                ));
            }
        }
        Ok(())
    }
}

/// `register_customer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterCustomer {
    pub customer_id: CustomerId,
    pub name: String,
    pub gender: Gender,
    pub birth_date: NaiveDate,
    pub phone: PhoneNumber,
    pub national_id: NationalId,
    pub bank_card: BankCard,
    /// Region of residence (province or city code/name), used for segmentation.
    pub region: String,
    pub employer: Option<String>,
    pub financials: Financials,
    pub risk_appetite: RiskAppetite,
    /// Acquisition channel, e.g. `app`, `branch`, `broker:acme`.
    pub channel: String,
}

/// `update_contact`: at least one of the fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContact {
    pub customer_id: CustomerId,
    #[serde(default)]
    pub phone: Option<PhoneNumber>,
    #[serde(default)]
    pub region: Option<String>,
}

/// `update_employment`: `employer` absent means not employed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEmployment {
    pub customer_id: CustomerId,
    pub employer: Option<String>,
}

/// `update_financials`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFinancials {
    pub customer_id: CustomerId,
    pub financials: Financials,
}

/// `record_credit_assessment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordCreditAssessment {
    pub customer_id: CustomerId,
    /// 300..=900.
    pub score: u16,
    /// Bureau or model that produced the score, e.g. `pboc`, `baihang`, `internal-v3`.
    pub source: String,
    pub assessed_on: NaiveDate,
}

/// `verify_identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyIdentity {
    pub customer_id: CustomerId,
    /// How identity was verified, e.g. `face_match`, `bank_card_four_factor`, `in_branch`.
    pub method: String,
    pub verified_on: NaiveDate,
}

/// `erase_customer`: crypto-shred the customer's sensitive data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseCustomer {
    pub customer_id: CustomerId,
    /// Why, for the audit trail, e.g. the data subject request it fulfils. Stored in
    /// clear: must not itself contain personal data.
    pub reason: String,
}

/// A command addressed to a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerCommand {
    Register(RegisterCustomer),
    UpdateContact(UpdateContact),
    UpdateEmployment(UpdateEmployment),
    UpdateFinancials(UpdateFinancials),
    RecordCreditAssessment(RecordCreditAssessment),
    VerifyIdentity(VerifyIdentity),
    Erase(EraseCustomer),
}

impl CustomerCommand {
    pub fn kind(&self) -> CommandKind {
        match self {
            CustomerCommand::Register(_) => CommandKind::RegisterCustomer,
            CustomerCommand::UpdateContact(_) => CommandKind::UpdateContact,
            CustomerCommand::UpdateEmployment(_) => CommandKind::UpdateEmployment,
            CustomerCommand::UpdateFinancials(_) => CommandKind::UpdateFinancials,
            CustomerCommand::RecordCreditAssessment(_) => CommandKind::RecordCreditAssessment,
            CustomerCommand::VerifyIdentity(_) => CommandKind::VerifyIdentity,
            CustomerCommand::Erase(_) => CommandKind::EraseCustomer,
        }
    }

    pub fn customer_id(&self) -> CustomerId {
        match self {
            CustomerCommand::Register(c) => c.customer_id,
            CustomerCommand::UpdateContact(c) => c.customer_id,
            CustomerCommand::UpdateEmployment(c) => c.customer_id,
            CustomerCommand::UpdateFinancials(c) => c.customer_id,
            CustomerCommand::RecordCreditAssessment(c) => c.customer_id,
            CustomerCommand::VerifyIdentity(c) => c.customer_id,
            CustomerCommand::Erase(c) => c.customer_id,
        }
    }
}

/// A fact about a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CustomerEvent {
    CustomerRegistered {
        customer_id: CustomerId,
        name: String,
        gender: Gender,
        birth_date: NaiveDate,
        phone: Sensitive<PhoneNumber>,
        national_id: Sensitive<NationalId>,
        bank_card: Sensitive<BankCard>,
        region: String,
        employer: Option<String>,
        financials: Financials,
        risk_appetite: RiskAppetite,
        channel: String,
        registered_on: NaiveDate,
    },
    ContactUpdated {
        phone: Option<Sensitive<PhoneNumber>>,
        region: Option<String>,
    },
    EmploymentUpdated {
        employer: Option<String>,
    },
    FinancialsUpdated {
        financials: Financials,
    },
    CreditAssessed {
        score: u16,
        source: String,
        assessed_on: NaiveDate,
    },
    IdentityVerified {
        method: String,
        verified_on: NaiveDate,
    },
    /// The customer's data key was destroyed: sensitive values are unreadable from now on.
    CustomerErased {
        reason: String,
        erased_on: NaiveDate,
    },
}

impl CustomerEvent {
    /// Stable event type name, as stored.
    pub fn type_name(&self) -> &'static str {
        match self {
            CustomerEvent::CustomerRegistered { .. } => "customer_registered",
            CustomerEvent::ContactUpdated { .. } => "contact_updated",
            CustomerEvent::EmploymentUpdated { .. } => "employment_updated",
            CustomerEvent::FinancialsUpdated { .. } => "financials_updated",
            CustomerEvent::CreditAssessed { .. } => "credit_assessed",
            CustomerEvent::IdentityVerified { .. } => "identity_verified",
            CustomerEvent::CustomerErased { .. } => "customer_erased",
        }
    }
}

/// One credit assessment on file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreditAssessment {
    pub score: u16,
    pub source: String,
    pub assessed_on: NaiveDate,
}

/// Everything known about a registered customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Profile {
    pub customer_id: CustomerId,
    pub name: String,
    pub gender: Gender,
    pub birth_date: NaiveDate,
    pub phone: Sensitive<PhoneNumber>,
    pub national_id: Sensitive<NationalId>,
    pub bank_card: Sensitive<BankCard>,
    pub region: String,
    pub employer: Option<String>,
    pub financials: Financials,
    pub risk_appetite: RiskAppetite,
    pub channel: String,
    pub registered_on: NaiveDate,
    pub identity_verified_on: Option<NaiveDate>,
    /// In the order recorded; the latest by `assessed_on` (then recording order) counts.
    pub credit_assessments: Vec<CreditAssessment>,
    /// When the customer was erased (only in [`Customer::Erased`]).
    pub erased_on: Option<NaiveDate>,
}

impl Profile {
    /// The current credit score: the assessment with the latest `assessed_on`.
    pub fn credit_score(&self) -> Option<u16> {
        self.credit_assessments
            .iter()
            .enumerate()
            .max_by_key(|(index, a)| (a.assessed_on, *index))
            .map(|(_, a)| a.score)
    }

    pub fn identity_verified(&self) -> bool {
        self.identity_verified_on.is_some()
    }

    /// `risk-grade/v1` on the customer's existing debts (no new loan).
    pub fn risk_grade(&self) -> RiskGrade {
        let dti = policy::debt_to_income(
            self.financials.monthly_debt_payments,
            self.financials.monthly_income,
        );
        policy::risk_grade(self.credit_score(), dti)
    }

    /// `value-tier/v1`.
    pub fn value_tier(&self) -> ValueTier {
        let f = &self.financials;
        policy::value_tier(f.monthly_income, f.total_assets, f.total_liabilities)
    }
}

/// The customer aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", content = "profile", rename_all = "snake_case")]
pub enum Customer {
    #[default]
    Unregistered,
    Registered(Box<Profile>),
    /// Crypto-shredded: national ID, bank card and phone are [`Sensitive::Erased`]; the
    /// rest of the profile stays for servicing and reporting. Final.
    Erased(Box<Profile>),
}

impl Customer {
    pub fn status(&self) -> &'static str {
        match self {
            Customer::Unregistered => "unregistered",
            Customer::Registered(_) => "registered",
            Customer::Erased(_) => "erased",
        }
    }

    /// The profile of a registered or erased customer.
    pub fn profile(&self) -> Option<&Profile> {
        match self {
            Customer::Registered(profile) | Customer::Erased(profile) => Some(profile),
            Customer::Unregistered => None,
        }
    }

    pub fn is_erased(&self) -> bool {
        matches!(self, Customer::Erased(_))
    }

    /// Rebuilds a customer from its events.
    pub fn replay<'e>(events: impl IntoIterator<Item = &'e CustomerEvent>) -> Customer {
        events.into_iter().fold(Customer::Unregistered, evolve)
    }
}

fn age_on(birth_date: NaiveDate, on: NaiveDate) -> i32 {
    let mut age = on.year() - birth_date.year();
    if (on.month(), on.day()) < (birth_date.month(), birth_date.day()) {
        age -= 1;
    }
    age
}

fn not_in_future(field: &str, date: NaiveDate, today: NaiveDate) -> Result<(), DomainError> {
    if date > today {
        return Err(DomainError::validation(
            field,
            format!("{date} is in the future (today is {today})"),
        ));
    }
    if date.year() < 1900 {
        return Err(DomainError::validation(
            field,
            format!("{date} is before 1900"),
        ));
    }
    Ok(())
}

/// Decides a customer command: the events it produces, or why it is refused.
pub fn decide(
    customer: &Customer,
    command: &CustomerCommand,
    ctx: &Context<'_>,
) -> Result<Vec<CustomerEvent>, DomainError> {
    let kind = command.kind();
    kind.authorize(ctx.actor)?;
    let refuse = || DomainError::InvalidTransition {
        state: customer.status(),
        command: kind.name(),
    };
    match (customer, command) {
        (Customer::Unregistered, CustomerCommand::Register(c)) => {
            let name = text::required("name", &c.name, 64)?;
            let region = text::required("region", &c.region, 64)?;
            let channel = text::label("channel", &c.channel)?;
            let employer = text::optional("employer", c.employer.as_deref(), 128)?;
            c.financials.validate("financials")?;
            not_in_future("birth_date", c.birth_date, ctx.today)?;
            if c.national_id.birth_date() != c.birth_date {
                return Err(DomainError::validation(
                    "birth_date",
                    "does not match the birth date in the national ID",
                ));
            }
            if c.national_id.gender() != c.gender {
                return Err(DomainError::validation(
                    "gender",
                    "does not match the gender in the national ID",
                ));
            }
            let age = age_on(c.birth_date, ctx.today);
            if !(MIN_AGE..=MAX_AGE).contains(&age) {
                return Err(DomainError::validation(
                    "birth_date",
                    format!("age {age} is outside {MIN_AGE}..={MAX_AGE}"),
                ));
            }
            Ok(vec![CustomerEvent::CustomerRegistered {
                customer_id: c.customer_id,
                name,
                gender: c.gender,
                birth_date: c.birth_date,
                phone: Sensitive::Known(c.phone.clone()),
                national_id: Sensitive::Known(c.national_id.clone()),
                bank_card: Sensitive::Known(c.bank_card.clone()),
                region,
                employer,
                financials: c.financials,
                risk_appetite: c.risk_appetite,
                channel,
                registered_on: ctx.today,
            }])
        }
        (Customer::Registered(p) | Customer::Erased(p), CustomerCommand::Register(_)) => {
            Err(DomainError::AlreadyExists {
                kind: "customer",
                id: p.customer_id.to_string(),
            })
        }
        (Customer::Unregistered, _) => Err(DomainError::NotFound {
            kind: "customer",
            id: command.customer_id().to_string(),
        }),
        (Customer::Erased(_), CustomerCommand::Erase(c)) => {
            // Erasing again changes nothing (the engine still makes sure the key is gone).
            text::required("reason", &c.reason, 256)?;
            Ok(vec![])
        }
        // An erased customer is final: no new personal data, no new assessments.
        (Customer::Erased(_), _) => Err(refuse()),
        (Customer::Registered(_), CustomerCommand::Erase(c)) => {
            let reason = text::required("reason", &c.reason, 256)?;
            Ok(vec![CustomerEvent::CustomerErased {
                reason,
                erased_on: ctx.today,
            }])
        }
        (Customer::Registered(p), CustomerCommand::UpdateContact(c)) => {
            if c.phone.is_none() && c.region.is_none() {
                return Err(DomainError::validation(
                    "phone",
                    "give a phone, a region, or both",
                ));
            }
            let region = match &c.region {
                Some(region) => Some(text::required("region", region, 64)?),
                None => None,
            };
            let phone = c
                .phone
                .clone()
                .map(Sensitive::Known)
                .filter(|phone| *phone != p.phone);
            let region = region.filter(|region| *region != p.region);
            if phone.is_none() && region.is_none() {
                return Ok(vec![]);
            }
            Ok(vec![CustomerEvent::ContactUpdated { phone, region }])
        }
        (Customer::Registered(p), CustomerCommand::UpdateEmployment(c)) => {
            let employer = text::optional("employer", c.employer.as_deref(), 128)?;
            if employer == p.employer {
                return Ok(vec![]);
            }
            Ok(vec![CustomerEvent::EmploymentUpdated { employer }])
        }
        (Customer::Registered(p), CustomerCommand::UpdateFinancials(c)) => {
            c.financials.validate("financials")?;
            if c.financials == p.financials {
                return Ok(vec![]);
            }
            Ok(vec![CustomerEvent::FinancialsUpdated {
                financials: c.financials,
            }])
        }
        (Customer::Registered(_), CustomerCommand::RecordCreditAssessment(c)) => {
            if !(MIN_CREDIT_SCORE..=MAX_CREDIT_SCORE).contains(&c.score) {
                return Err(DomainError::validation(
                    "score",
                    format!(
                        "{} is outside {MIN_CREDIT_SCORE}..={MAX_CREDIT_SCORE}",
                        c.score
                    ),
                ));
            }
            let source = text::label("source", &c.source)?;
            not_in_future("assessed_on", c.assessed_on, ctx.today)?;
            Ok(vec![CustomerEvent::CreditAssessed {
                score: c.score,
                source,
                assessed_on: c.assessed_on,
            }])
        }
        (Customer::Registered(p), CustomerCommand::VerifyIdentity(c)) => {
            let method = text::label("method", &c.method)?;
            not_in_future("verified_on", c.verified_on, ctx.today)?;
            if c.verified_on < p.registered_on {
                return Err(DomainError::validation(
                    "verified_on",
                    format!(
                        "{} is before the customer was registered ({})",
                        c.verified_on, p.registered_on
                    ),
                ));
            }
            // Verification is one-way: verifying again (by any method) changes nothing.
            if p.identity_verified() {
                return Ok(vec![]);
            }
            Ok(vec![CustomerEvent::IdentityVerified {
                method,
                verified_on: c.verified_on,
            }])
        }
    }
}

/// Applies a recorded event. Total: an event that does not fit the state (which `decide`
/// never produces) leaves the state unchanged.
pub fn evolve(customer: Customer, event: &CustomerEvent) -> Customer {
    match (customer, event) {
        (
            Customer::Unregistered,
            CustomerEvent::CustomerRegistered {
                customer_id,
                name,
                gender,
                birth_date,
                phone,
                national_id,
                bank_card,
                region,
                employer,
                financials,
                risk_appetite,
                channel,
                registered_on,
            },
        ) => Customer::Registered(Box::new(Profile {
            customer_id: *customer_id,
            name: name.clone(),
            gender: *gender,
            birth_date: *birth_date,
            phone: phone.clone(),
            national_id: national_id.clone(),
            bank_card: bank_card.clone(),
            region: region.clone(),
            employer: employer.clone(),
            financials: *financials,
            risk_appetite: *risk_appetite,
            channel: channel.clone(),
            registered_on: *registered_on,
            identity_verified_on: None,
            credit_assessments: Vec::new(),
            erased_on: None,
        })),
        (Customer::Registered(mut p), event) => {
            match event {
                CustomerEvent::CustomerRegistered { .. } => {}
                CustomerEvent::ContactUpdated { phone, region } => {
                    if let Some(phone) = phone {
                        p.phone = phone.clone();
                    }
                    if let Some(region) = region {
                        p.region = region.clone();
                    }
                }
                CustomerEvent::EmploymentUpdated { employer } => p.employer = employer.clone(),
                CustomerEvent::FinancialsUpdated { financials } => p.financials = *financials,
                CustomerEvent::CreditAssessed {
                    score,
                    source,
                    assessed_on,
                } => p.credit_assessments.push(CreditAssessment {
                    score: *score,
                    source: source.clone(),
                    assessed_on: *assessed_on,
                }),
                CustomerEvent::IdentityVerified { verified_on, .. } => {
                    p.identity_verified_on = Some(*verified_on)
                }
                CustomerEvent::CustomerErased { erased_on, .. } => {
                    p.national_id = Sensitive::Erased;
                    p.bank_card = Sensitive::Erased;
                    p.phone = Sensitive::Erased;
                    p.erased_on = Some(*erased_on);
                    return Customer::Erased(p);
                }
            }
            Customer::Registered(p)
        }
        (customer, _) => customer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_values_are_the_value_on_the_wire_or_erased() {
        let phone = PhoneNumber::parse("13812345678").expect("valid");
        let known = Sensitive::Known(phone.clone());
        assert_eq!(
            serde_json::to_string(&known).expect("json"),
            "\"13812345678\""
        );
        assert_eq!(
            serde_json::to_string(&Sensitive::<PhoneNumber>::Erased).expect("json"),
            "\"erased\""
        );
        assert_eq!(
            serde_json::from_str::<Sensitive<PhoneNumber>>("\"+86 138 1234 5678\"").ok(),
            Some(known.clone())
        );
        assert_eq!(
            serde_json::from_str::<Sensitive<PhoneNumber>>("\"erased\"").ok(),
            Some(Sensitive::Erased)
        );
        assert_eq!(known.to_string(), "138****5678");
        assert_eq!(format!("{known:?}"), "Known(PhoneNumber(\"138****5678\"))");
        assert_eq!(Sensitive::<PhoneNumber>::Erased.to_string(), "erased");
        for bad in ["\"12812345678\"", "13812345678", "null"] {
            let error = serde_json::from_str::<Sensitive<PhoneNumber>>(bad)
                .expect_err("refused")
                .to_string();
            assert!(!error.contains("2812345678"), "echoes the input: {error}");
        }
    }
}
