//! The lender's business calendar: which days are working days.
//!
//! The delinquency sweep runs on business days only; everything else (reminders, the
//! follow-up watch) looks at every calendar day. Weekend days and holidays are
//! configuration, never hard-coded, because lenders differ (and some countries move
//! working days around public holidays; list those as holidays, and a worked weekend day
//! is out of scope of this version).

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate, Weekday};

use crate::AutomationError;

/// Weekend days and holidays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessCalendar {
    weekend: BTreeSet<u32>,
    holidays: BTreeSet<NaiveDate>,
}

impl Default for BusinessCalendar {
    /// Saturday and Sunday off, no holidays.
    fn default() -> Self {
        BusinessCalendar::new([Weekday::Sat, Weekday::Sun], [])
    }
}

impl BusinessCalendar {
    pub fn new(
        weekend: impl IntoIterator<Item = Weekday>,
        holidays: impl IntoIterator<Item = NaiveDate>,
    ) -> Self {
        BusinessCalendar {
            weekend: weekend
                .into_iter()
                .map(|d| d.num_days_from_monday())
                .collect(),
            holidays: holidays.into_iter().collect(),
        }
    }

    /// Parses `sat,sun` style weekend lists (`none` for no weekend).
    pub fn parse_weekend(text: &str) -> Result<Vec<Weekday>, AutomationError> {
        if text.trim().eq_ignore_ascii_case("none") {
            return Ok(Vec::new());
        }
        text.split(',')
            .map(|day| {
                day.trim().parse::<Weekday>().map_err(|_| {
                    AutomationError::Config(format!(
                        "{day:?} is not a weekday (mon, tue, wed, thu, fri, sat, sun)"
                    ))
                })
            })
            .collect()
    }

    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        !self
            .weekend
            .contains(&date.weekday().num_days_from_monday())
            && !self.holidays.contains(&date)
    }

    pub fn holidays(&self) -> impl Iterator<Item = &NaiveDate> {
        self.holidays.iter()
    }
}

/// The calendar days after `after` up to and including `through`, in order (none when
/// `through <= after`).
pub fn days_after(after: NaiveDate, through: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    after
        .iter_days()
        .skip(1)
        .take_while(move |day| *day <= through)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn weekends_and_holidays_are_not_business_days() {
        let calendar = BusinessCalendar::new([Weekday::Sat, Weekday::Sun], [d("2026-01-01")]);
        let cases = [
            ("2026-01-01", false), // Thursday, a holiday
            ("2026-01-02", true),  // Friday
            ("2026-01-03", false), // Saturday
            ("2026-01-04", false), // Sunday
            ("2026-01-05", true),  // Monday
        ];
        for (day, expected) in cases {
            assert_eq!(calendar.is_business_day(d(day)), expected, "{day}");
        }
    }

    #[test]
    fn weekend_lists_parse_and_bad_ones_are_refused() {
        assert_eq!(
            BusinessCalendar::parse_weekend("fri, sat").unwrap(),
            [Weekday::Fri, Weekday::Sat]
        );
        assert!(BusinessCalendar::parse_weekend("none").unwrap().is_empty());
        assert!(BusinessCalendar::parse_weekend("saturnday").is_err());
    }

    #[test]
    fn days_after_runs_in_order_and_excludes_the_start() {
        let days: Vec<_> = days_after(d("2026-01-30"), d("2026-02-02")).collect();
        assert_eq!(days, [d("2026-01-31"), d("2026-02-01"), d("2026-02-02")]);
        assert_eq!(days_after(d("2026-01-30"), d("2026-01-30")).count(), 0);
    }
}
