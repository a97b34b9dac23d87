"""JavaScript files for the StarCoderData demo's ``javascript/`` directory.

Kinds, as found in the real dump: an Express route validating its body with Ajv, a messy jQuery
script (globals, no semicolons, commented-out logging), a Jest/supertest test and a webpack
config, so the code classifiers see application code, tests and configuration in one language.
"""

from __future__ import annotations

from trellis.acquire.demo.common import _word
from trellis.acquire.demo.vocab import ACTIONS


def _js_app(rng, ent):
    act = rng.choice(ACTIONS)
    lines = [
        "'use strict';",
        "",
        "const express = require('express');",
        "const Ajv = require('ajv');",
        f"const schema = require('./schemas/{ent}.json');",
        "",
        "const ajv = new Ajv({ allErrors: true });",
        "const validate = ajv.compile(schema);",
        "const router = express.Router();",
        "",
        f"/** POST /{ent}s: validate the body against the {ent} schema before storing it. */",
        f"router.post('/{ent}s', async (req, res, next) => {{",
        "  if (!validate(req.body)) {",
        "    return res.status(422).json({ errors: validate.errors });",
        "  }",
        "  try {",
        f"    const saved = await req.app.locals.db.{act}('{ent}s', req.body);",
        "    return res.status(201).json(saved);",
        "  } catch (err) {",
        "    return next(err);",
        "  }",
        "});",
        "",
        "module.exports = router;",
        "",
    ]
    return f"server/routes/{ent}s.js", "\n".join(lines)


def _js_messy(rng, ent):
    lines = [
        "var data = []",
        "var i",
        "$(document).ready(function(){",
        f"  $.get('/api/{ent}s', function(r){{",
        "    data = r",
        "    for(i=0;i<data.length;i++){",
        "      $('#list').append('<li>'+data[i].name+'</li>')",
        "      //console.log(data[i])",
        "    }",
        "  })",
        f"  $('#btn{rng.randint(1, 9)}').click(function(){{ alert('saved') }})",
        "})",
        "function x(a,b){ return a==b?1:0 }",
        "",
    ]
    return f"public/js/{_word(rng)}.js", "\n".join(lines)


def _js_test(rng, ent):
    lines = [
        "const request = require('supertest');",
        "const app = require('../app');",
        "",
        f"describe('POST /{ent}s', () => {{",
        "  it('rejects a body that breaks the schema', async () => {",
        f"    const res = await request(app).post('/{ent}s').send({{ id: 'not-a-number' }});",
        "    expect(res.status).toBe(422);",
        "    expect(res.body.errors.length).toBeGreaterThan(0);",
        "  });",
        "",
        "  it('stores a valid record', async () => {",
        f"    const res = await request(app).post('/{ent}s').send({{ id: {rng.randint(1, 500)}, name: "
        f"'{_word(rng)}' }});",
        "    expect(res.status).toBe(201);",
        "  });",
        "});",
        "",
    ]
    return f"test/{ent}s.test.js", "\n".join(lines)


def _js_config(rng, ent):
    lines = [
        "const path = require('path');",
        "",
        "module.exports = {",
        f"  mode: '{rng.choice(['production', 'development'])}',",
        "  entry: './src/index.js',",
        "  output: {",
        "    path: path.resolve(__dirname, 'dist'),",
        "    filename: '[name].[contenthash].js',",
        "  },",
        "  module: {",
        "    rules: [{ test: /\\.jsx?$/, exclude: /node_modules/, use: 'babel-loader' }],",
        "  },",
        f"  devServer: {{ port: {rng.choice([3000, 8080, 9000])}, hot: true }},",
        "};",
        "",
    ]
    return "webpack.config.js", "\n".join(lines)
