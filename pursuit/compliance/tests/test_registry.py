"""Reading a do-not-call registry copy. No database."""

from __future__ import annotations

import itertools

from pursuit.compliance.registry import registry_read

# Line numbers count every line, blank and comment lines included.
REGISTRY = [
    "\ufeffAreaCode,PhoneNumber\n",  # 1: header, skipped
    "312,5550143\n",  # 2
    "\n",  # 3
    "# a comment line\n",  # 4
    "3125550144\r\n",  # 5
    "+13125550145\n",  # 6
    "13125550146\n",  # 7
    "312-555-0147\n",  # 8
    "012,5550148\n",  # 9
    "3121550149\n",  # 10
    "31255501\n",  # 11
    "+443125550150\n",  # 12
    "phone\n",  # 13
    "1312,5550151\n",  # 14
    " 312 , 5550152 \n",  # 15
    "+1312,5550153\n",  # 16
    "1125550154\n",  # 17
    "312,555,014\n",  # 18
]


def test_registry_file_with_bad_lines():
    assert list(registry_read(REGISTRY)) == [
        (2, "+13125550143", ""),
        (5, "+13125550144", ""),
        (6, "+13125550145", ""),
        (7, "+13125550146", ""),
        (8, None, "not a phone number: '312-555-0147'"),
        (9, None, "area code 012 starts with 0 or 1"),
        (10, None, "exchange 155 starts with 0 or 1"),
        (11, None, "not a phone number: '31255501'"),
        (12, None, "not a phone number: '+443125550150'"),
        (13, None, "not a phone number: 'phone'"),  # a header only on the first line
        (14, "+13125550151", ""),
        (15, "+13125550152", ""),
        (16, "+13125550153", ""),
        (17, None, "area code 112 starts with 0 or 1"),
        (18, None, "not a phone number: '312,555,014'"),
    ]


def test_header_after_comments_is_skipped_and_no_header_is_fine():
    assert list(registry_read(["# FTC download\n", "\n", "area_code,phone\n", "312,5550143\n"])) == [
        (4, "+13125550143", "")
    ]
    assert list(registry_read(["2125550100"])) == [(1, "+12125550100", "")]


def test_long_bad_line_is_shortened_in_the_problem():
    [_, (line, number, problem)] = registry_read(["3125550143", "x" * 30 + "," + "9" * 30])
    assert (line, number) == (2, None)
    assert problem == "not a phone number: " + repr("x" * 30 + "," + "9" * 9)


def test_reads_lazily():
    # An endless source: a reader that collected every line first would never return.
    endless = (f"312{n:07d}" for n in itertools.count(2_000_000))
    first = list(itertools.islice(registry_read(endless), 3))
    assert first == [(1, "+13122000000", ""), (2, "+13122000001", ""), (3, "+13122000002", "")]


def test_reads_an_open_file(tmp_path):
    path = tmp_path / "dnc.txt"
    path.write_text("AreaCode,PhoneNumber\r\n312,5550143\r\n312,0550143\r\n", encoding="utf-8")
    with path.open(encoding="utf-8") as handle:
        assert list(registry_read(handle)) == [
            (2, "+13125550143", ""),
            (3, None, "exchange 055 starts with 0 or 1"),
        ]
