//! A component of some other world: loading it as a plugin must fail with `WrongWorld`.

wit_bindgen::generate!({
    inline: "package test:other@1.0.0;\nworld other { export hello: func() -> string; }",
    world: "other",
});

struct Other;

impl Guest for Other {
    fn hello() -> String {
        "not a capability".into()
    }
}

export!(Other);
