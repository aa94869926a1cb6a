//! The shop's products: a fixed catalogue compiled into the binary.
//!
//! A demo needs no product database; what matters is that the basket only ever refers to
//! products by `sku` and looks names and prices up here, so a price shown in the basket is always
//! the catalogue's price, never one a client sent.

use serde::Serialize;

/// One product for sale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Product {
    /// Stock-keeping unit: the product's stable id, used in URLs and in the basket.
    pub sku: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Unit price in cents (integers: money is never a float here).
    pub price_cents: u64,
}

/// Every product, in display order.
pub const PRODUCTS: &[Product] = &[
    Product {
        sku: "tea-earl-grey",
        name: "Earl Grey tea, 100 g",
        price_cents: 650,
    },
    Product {
        sku: "mug-enamel",
        name: "Enamel mug",
        price_cents: 1200,
    },
    Product {
        sku: "biscuits-oat",
        name: "Oat biscuits",
        price_cents: 325,
    },
    Product {
        sku: "teapot-cast-iron",
        name: "Cast-iron teapot",
        price_cents: 4990,
    },
];

/// The product with this `sku`, if the shop sells it.
///
/// ```
/// assert_eq!(basket::catalog::find("mug-enamel").map(|p| p.price_cents), Some(1200));
/// assert!(basket::catalog::find("unicorn").is_none());
/// ```
#[must_use]
pub fn find(sku: &str) -> Option<&'static Product> {
    PRODUCTS.iter().find(|p| p.sku == sku)
}
