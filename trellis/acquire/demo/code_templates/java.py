"""Java files for the StarCoderData demo's ``java/`` directory.

Kinds, as found in the real dump: a documented service class, a getter/setter POJO and a JUnit 5
test.
"""

from __future__ import annotations

from trellis.acquire.demo.common import _camel, _fields, _word


def _java_service(rng, ent):
    cls = _camel(ent)
    lines = [
        f"package com.{_word(rng)}.{ent};",
        "",
        "import java.util.List;",
        "import java.util.Optional;",
        "",
        "/**",
        f" * Looks up and updates {ent}s; all persistence goes through {cls}Repository.",
        " */",
        f"public final class {cls}Service {{",
        f"    private final {cls}Repository repository;",
        "",
        f"    public {cls}Service({cls}Repository repository) {{",
        "        this.repository = repository;",
        "    }",
        "",
        f"    /** Returns the {ent} with this id, or empty when none exists. */",
        f"    public Optional<{cls}> find(long id) {{",
        "        return repository.findById(id);",
        "    }",
        "",
        f"    public List<{cls}> active() {{",
        f"        return repository.findAll().stream().filter({cls}::isActive).toList();",
        "    }",
        "}",
        "",
    ]
    return f"src/main/java/com/example/{ent}/{cls}Service.java", "\n".join(lines)


def _java_pojo(rng, ent):
    cls = _camel(ent)
    fields = _fields(rng, 5, 9)
    jt = {"int": "int", "str": "String", "float": "double", "bool": "boolean"}
    lines = [f"package com.example.{ent};", "", f"public class {cls} {{"]
    lines += [f"    private {jt[t]} {_camel(f)[0].lower() + _camel(f)[1:]};" for f, t, _, _ in fields]
    for f, t, _, _ in fields:
        name = _camel(f)[0].lower() + _camel(f)[1:]
        lines += [
            "",
            f"    public {jt[t]} get{_camel(f)}() {{",
            f"        return {name};",
            "    }",
            "",
            f"    public void set{_camel(f)}({jt[t]} {name}) {{",
            f"        this.{name} = {name};",
            "    }",
        ]
    lines += ["}", ""]
    return f"src/main/java/com/example/{ent}/{cls}.java", "\n".join(lines)


def _java_test(rng, ent):
    cls = _camel(ent)
    lines = [
        f"package com.example.{ent};",
        "",
        "import static org.junit.jupiter.api.Assertions.*;",
        "",
        "import org.junit.jupiter.api.Test;",
        "",
        f"class {cls}ServiceTest {{",
        "    @Test",
        "    void missingIdIsEmpty() {",
        f"        var service = new {cls}Service(new InMemory{cls}Repository());",
        f"        assertTrue(service.find({rng.randint(100, 999)}L).isEmpty());",
        "    }",
        "}",
        "",
    ]
    return f"src/test/java/com/example/{ent}/{cls}ServiceTest.java", "\n".join(lines)
