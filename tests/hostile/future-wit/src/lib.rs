//! A plugin built against a future, incompatible `byoc:capability@0.3.0`: loading it must
//! fail with `IncompatibleVersion`, before any linking.

wit_bindgen::generate!({
    inline: "package byoc:capability@0.3.0;\ninterface adapter { describe: func() -> string; }\nworld capability-adapter { export adapter; }",
    world: "capability-adapter",
});

struct Future;

impl exports::byoc::capability::adapter::Guest for Future {
    fn describe() -> String {
        "from the future".into()
    }
}

export!(Future);
