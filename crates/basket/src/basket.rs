//! The basket: what is stored in the session, the rules for changing it, and its JSON view.
//!
//! This module knows nothing about HTTP or sessions. [`mod@crate::app`] loads a [`Basket`] from the
//! session, changes it with [`Basket::add`] / [`Basket::remove`], and stores it back, all under
//! the session lock; the view joins the stored lines with [`crate::catalog`] for names and prices.

use serde::{Deserialize, Serialize};

use crate::catalog;

/// Most units of one product a single "add" may ask for.
pub const MAX_ADD_QTY: u32 = 99;

/// Most units of one product a basket line may hold: the same limit as one add, so "at most 99"
/// holds for the line as well as for each request. An add beyond it is refused (`422`) and the
/// line is left as it was. It also keeps a line's total far from any overflow and the session
/// small.
pub const MAX_LINE_QTY: u32 = MAX_ADD_QTY;

/// The basket as stored in the session, under the one key [`crate::app::BASKET_KEY`].
///
/// **Why one key for the whole basket.** The library writes each session key as its own Redis
/// hash field, so one key per line would let two requests that change *different* lines race
/// safely without a lock. But the same line (a double click on "add") is a read-modify-write of
/// one value either way, so the add must run under the session lock ([`redis_sessions::LockedSession`])
/// anyway; and under the lock, one key is just as safe and simpler: one decode to show the basket,
/// one field written per change, no prefix scheme to tell basket keys from other session keys,
/// and the line order (the order products were added in) kept for free. A basket is a few dozen
/// bytes of MessagePack, far below `max_value_bytes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Basket {
    /// The lines, in the order their products were first added; never two with one sku, never a
    /// zero quantity.
    lines: Vec<Line>,
}

/// One stored line: a product and how many of it. Names and prices are not stored: they are
/// looked up in the catalogue when the basket is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Line {
    sku: String,
    qty: u32,
}

/// An add that would take a line past [`MAX_LINE_QTY`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineFull {
    /// What the line holds now (unchanged).
    pub qty: u32,
}

impl Basket {
    /// Adds `qty` units of `sku`, returning the line's new quantity.
    ///
    /// ```
    /// let mut basket = basket::basket::Basket::default();
    /// assert_eq!(basket.add("mug-enamel", 2), Ok(2));
    /// assert_eq!(basket.add("mug-enamel", 3), Ok(5));
    /// assert!(basket.add("mug-enamel", 95).is_err()); // 100 is over MAX_LINE_QTY: unchanged
    /// assert_eq!(basket.add("mug-enamel", 94), Ok(99));
    /// assert_eq!(basket.qty("mug-enamel"), 99);
    /// ```
    ///
    /// # Errors
    ///
    /// [`LineFull`] when the line would exceed [`MAX_LINE_QTY`]; the basket is then unchanged.
    pub fn add(&mut self, sku: &str, qty: u32) -> Result<u32, LineFull> {
        let current = self.qty(sku);
        let new = current
            .checked_add(qty)
            .filter(|&n| n <= MAX_LINE_QTY)
            .ok_or(LineFull { qty: current })?;
        match self.lines.iter_mut().find(|line| line.sku == sku) {
            Some(line) => line.qty = new,
            None => self.lines.push(Line {
                sku: sku.to_owned(),
                qty: new,
            }),
        }
        Ok(new)
    }

    /// Removes the line of `sku`; returns whether there was one.
    pub fn remove(&mut self, sku: &str) -> bool {
        let before = self.lines.len();
        self.lines.retain(|line| line.sku != sku);
        self.lines.len() != before
    }

    /// How many units of `sku` the basket holds (0 when none).
    #[must_use]
    pub fn qty(&self, sku: &str) -> u32 {
        self.lines
            .iter()
            .find(|line| line.sku == sku)
            .map_or(0, |line| line.qty)
    }

    /// Whether the basket has no lines.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The JSON view of the basket for `user`: lines with catalogue names and unit prices, and the
    /// total. A stored line whose product left the catalogue is not shown (nor counted).
    #[must_use]
    pub fn view(&self, user: Option<String>) -> BasketView {
        let items: Vec<ItemView> = self
            .lines
            .iter()
            .filter_map(|line| {
                catalog::find(&line.sku).map(|product| ItemView {
                    sku: product.sku.to_owned(),
                    name: product.name.to_owned(),
                    qty: line.qty,
                    price_cents: product.price_cents,
                })
            })
            .collect();
        let total_cents = items
            .iter()
            .map(|item| u64::from(item.qty) * item.price_cents)
            .sum();
        BasketView {
            items,
            total_cents,
            user,
        }
    }
}

/// The answer of `GET /api/basket` (and of every route that changes the basket):
/// `{"items": [{"sku", "name", "qty", "price_cents"}], "total_cents", "user"}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasketView {
    /// The lines, in the order their products were first added.
    pub items: Vec<ItemView>,
    /// Sum of `qty * price_cents` over the lines.
    pub total_cents: u64,
    /// The logged-in user's name, `null` when nobody is logged in.
    pub user: Option<String>,
}

/// One line of a [`BasketView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemView {
    /// The product's sku.
    pub sku: String,
    /// The product's name, from the catalogue.
    pub name: String,
    /// Units in the basket.
    pub qty: u32,
    /// Unit price in cents, from the catalogue.
    pub price_cents: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_to_an_existing_line_keeps_one_line() {
        let mut basket = Basket::default();
        assert_eq!(basket.add("mug-enamel", 1), Ok(1));
        assert_eq!(basket.add("tea-earl-grey", 2), Ok(2));
        assert_eq!(basket.add("mug-enamel", 4), Ok(5));
        let view = basket.view(None);
        let lines: Vec<(&str, u32)> = view.items.iter().map(|i| (i.sku.as_str(), i.qty)).collect();
        assert_eq!(lines, [("mug-enamel", 5), ("tea-earl-grey", 2)]);
        assert_eq!(view.total_cents, 5 * 1200 + 2 * 650);
    }

    #[test]
    fn a_line_never_exceeds_the_cap() {
        assert_eq!(MAX_LINE_QTY, 99);
        let mut basket = Basket::default();
        assert_eq!(basket.add("mug-enamel", MAX_LINE_QTY), Ok(MAX_LINE_QTY));
        assert_eq!(
            basket.add("mug-enamel", 1),
            Err(LineFull { qty: MAX_LINE_QTY })
        );
        assert_eq!(basket.qty("mug-enamel"), MAX_LINE_QTY);
    }

    #[test]
    fn removing_the_last_line_empties_the_basket() {
        let mut basket = Basket::default();
        assert_eq!(basket.add("mug-enamel", 1), Ok(1));
        assert!(basket.remove("mug-enamel"));
        assert!(!basket.remove("mug-enamel"));
        assert!(basket.is_empty());
    }

    #[test]
    fn lines_of_products_no_longer_sold_are_not_shown() {
        let mut basket = Basket::default();
        assert_eq!(basket.add("discontinued", 3), Ok(3));
        assert_eq!(basket.view(None), BasketView::default());
    }
}
