//! Bad spaces are rejected with an error that names the parameter or the constraint.

use tuner_spec::expr::ExprError;
use tuner_spec::{Space, SpaceError, Value};

#[test]
fn empty_value_list_names_the_parameter() {
    let e = Space::builder().param("block", [64, 128]).param("items", Vec::<i64>::new()).build().unwrap_err();
    assert!(matches!(&e, SpaceError::EmptyParam(p) if p == "items"), "{e}");
    assert_eq!(e.to_string(), "parameter `items` has no values");
}

#[test]
fn duplicate_values_name_the_parameter_and_value() {
    let e = Space::builder().param("block", [64, 128, 64]).build().unwrap_err();
    assert!(matches!(&e, SpaceError::DuplicateValue { param, value: Value::Int(64) } if param == "block"), "{e}");
    assert!(e.to_string().contains("`block` lists the value 64 twice"), "{e}");
}

#[test]
fn mixed_value_types_name_the_parameter() {
    let e = Space::new(vec![("layout".into(), vec![Value::from("row"), Value::Int(1)])], vec![]).unwrap_err();
    assert!(matches!(&e, SpaceError::MixedTypes { param, .. } if param == "layout"), "{e}");
    assert!(e.to_string().contains("string values and the integer 1"), "{e}");
}

#[test]
fn duplicate_parameter_is_rejected() {
    let e = Space::builder().param("block", [64]).param("block", [128]).build().unwrap_err();
    assert!(matches!(&e, SpaceError::DuplicateParam(p) if p == "block"), "{e}");
}

#[test]
fn no_parameters_is_rejected() {
    let e = Space::builder().build().unwrap_err();
    assert!(matches!(e, SpaceError::NoParams));
}

#[test]
fn unknown_name_in_constraint_names_it() {
    let e = Space::builder()
        .param("block", [64])
        .param("items", [1])
        .constraint("block * itms <= 8192")
        .build()
        .unwrap_err();
    let SpaceError::Constraint { constraint, source } = &e else { panic!("wrong error: {e}") };
    assert_eq!(constraint, "block * itms <= 8192");
    assert!(matches!(source, ExprError::UnknownName { name, .. } if name == "itms"), "{source}");
}

#[test]
fn bad_syntax_in_constraint_names_it_and_the_column() {
    let e =
        Space::builder().param("tile", [8, 16]).param("rows", [1, 2]).constraint("tile % == 0").build().unwrap_err();
    let SpaceError::Constraint { constraint, source } = &e else { panic!("wrong error: {e}") };
    assert_eq!(constraint, "tile % == 0");
    assert!(matches!(source, ExprError::Syntax { column: 8, .. }), "{source}");
}

#[test]
fn constraints_excluding_every_config_are_rejected() {
    let e = Space::builder()
        .param("block", [64, 128])
        .param("items", [1, 2])
        .constraint("block * items > 1000")
        .build()
        .unwrap_err();
    assert!(matches!(&e, SpaceError::Unsatisfiable(c) if c.contains("block * items > 1000")), "{e}");
}

#[test]
fn issue_examples_parse_and_constrain() {
    let s = Space::builder()
        .param("bm", [32, 64, 128])
        .param("bn", [32, 64, 128])
        .param("tm", [4, 8])
        .param("tn", [4, 8])
        .param("tile", [8, 16])
        .param("rows", [1, 2, 4, 3])
        .constraint("bm / tm * (bn / tn) >= 32")
        .constraint("tile % rows == 0")
        .build()
        .unwrap();
    let all = s.valid_points().unwrap();
    assert!(!all.is_empty());
    for p in all.iter() {
        let c = s.config(p);
        let (bm, bn, tm, tn) = (c.int("bm").unwrap(), c.int("bn").unwrap(), c.int("tm").unwrap(), c.int("tn").unwrap());
        assert!(bm / tm * (bn / tn) >= 32);
        assert_eq!(c.int("tile").unwrap() % c.int("rows").unwrap(), 0);
    }
    // rows = 3 never divides 8 or 16, and 32/8 * 32/8 = 16 < 32 is excluded.
    assert!(all.iter().all(|p| s.config(p).int("rows") != Some(3)));
    let mut expected = 0;
    for bm in [32, 64, 128] {
        for bn in [32, 64, 128] {
            for tm in [4, 8] {
                for tn in [4, 8] {
                    for tile in [8, 16] {
                        for rows in [1, 2, 4, 3] {
                            expected += (bm / tm * (bn / tn) >= 32 && tile % rows == 0) as usize;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(all.len(), expected);
}
