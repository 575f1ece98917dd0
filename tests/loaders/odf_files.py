"""OpenDocument files built with odfpy for the loader and scenario tests: a text with headings, a list, a merged
table and a footnote; a presentation with titles, a table and speaker notes; a spreadsheet with a merged range."""

from __future__ import annotations

from pathlib import Path

from odf.draw import Frame, Page, TextBox
from odf.namespaces import PRESENTATIONNS
from odf.opendocument import OpenDocumentPresentation, OpenDocumentSpreadsheet, OpenDocumentText
from odf.presentation import Notes
from odf.style import MasterPage, PageLayout
from odf.table import CoveredTableCell, Table, TableCell, TableColumn, TableRow
from odf.text import H, List, ListItem, Note, NoteBody, NoteCitation, P, S, Span

CHAPTER = "第一章 总则"
ARTICLE = "第三条 钥匙管理"
ODT_FACT = "档案室钥匙由欧阳振华保管，编号 K-4827。"
NOTE_TEXT = "见二〇二四年修订版。"
ODT_TABLE = [["姓名", "部门", "工号"], ["司马光", "质检部", "G-7301"], ["合并的值", "", "G-7302"]]

SLIDES = [
    ("开场", ["欢迎各位。"], None),
    ("年度人物", ["年度最佳销售：诸葛云飞，全年签约 386 单。"], "诸葛云飞的奖金为 52000 元。"),
    ("数据", [], None),
]
ODP_TABLE = [["季度", "营收"], ["一季度", "1200 万"], ["二季度", "1350 万"]]


def _cell(value: str, **attributes: int) -> TableCell:
    cell = TableCell(valuetype="string", **attributes)
    cell.addElement(P(text=value))
    return cell


def _table(rows: list[list[str]], *, merge_first_column_of_last_row: bool = False) -> Table:
    table = Table(name="表1")
    table.addElement(TableColumn(numbercolumnsrepeated=len(rows[0])))
    for r, values in enumerate(rows):
        row = TableRow()
        if merge_first_column_of_last_row and r == len(rows) - 1:
            row.addElement(_cell(values[0], numbercolumnsspanned=2))
            row.addElement(CoveredTableCell())
            row.addElement(_cell(values[2]))
        else:
            for value in values:
                row.addElement(_cell(value))
        table.addElement(row)
    return table


def _frame(x: str, y: str, width: str, height: str, kind: str) -> Frame:
    """A presentation frame (``presentation:class``: title, outline, notes...), which odfpy's draw:frame refuses
    as a keyword."""
    frame = Frame(x=x, y=y, width=width, height=height)
    frame.setAttrNS(PRESENTATIONNS, "class", kind)
    return frame


def build_odt(path: Path) -> None:
    """第一章 > 第三条 with the fact (a footnote in it, spaces as text:s), a list, then a table with a merged cell."""
    document = OpenDocumentText()
    body = document.text
    body.addElement(H(outlinelevel=1, text=CHAPTER))
    body.addElement(P(text="本章适用于全体员工。"))
    body.addElement(H(outlinelevel=2, text=ARTICLE))
    fact = P(text=ODT_FACT[:9])
    note = Note(noteclass="footnote", id="ftn1")
    note.addElement(NoteCitation(text="1"))
    note_body = NoteBody()
    note_body.addElement(P(text=NOTE_TEXT))
    note.addElement(note_body)
    fact.addElement(note)
    fact.addElement(Span(text=ODT_FACT[9:]))
    body.addElement(fact)
    spaced = P(text="两个")
    spaced.addElement(S(c=3))
    spaced.addText("空格")
    body.addElement(spaced)
    items = List()
    for text in ("不得复制钥匙。", "离开时锁门。"):
        item = ListItem()
        item.addElement(P(text=text))
        items.addElement(item)
    body.addElement(items)
    body.addElement(_table(ODT_TABLE, merge_first_column_of_last_row=True))
    document.save(str(path))


def build_odp(path: Path) -> None:
    """Three slides: titles and bodies as presentation frames, notes on the second, a table on the third."""
    document = OpenDocumentPresentation()
    layout = PageLayout(name="layout")
    document.automaticstyles.addElement(layout)
    master = MasterPage(name="Default", pagelayoutname=layout)
    document.masterstyles.addElement(master)
    for n, (title, body, notes) in enumerate(SLIDES, 1):
        page = Page(name=f"page{n}", masterpagename=master)
        document.presentation.addElement(page)
        # The body frame first in the XML, placed below the title: reading order puts the title first anyway.
        if body:
            frame = _frame("2cm", "5cm", "20cm", "8cm", "outline")
            box = TextBox()
            for line in body:
                box.addElement(P(text=line))
            frame.addElement(box)
            page.addElement(frame)
        frame = _frame("2cm", "1cm", "20cm", "3cm", "title")
        box = TextBox()
        box.addElement(P(text=title))
        frame.addElement(box)
        page.addElement(frame)
        footer = _frame("2cm", "18cm", "5cm", "1cm", "page-number")
        footer_box = TextBox()
        footer_box.addElement(P(text=str(n)))
        footer.addElement(footer_box)
        page.addElement(footer)
        if n == 3:
            table_frame = Frame(x="2cm", y="5cm", width="20cm", height="8cm")
            table_frame.addElement(_table(ODP_TABLE))
            page.addElement(table_frame)
        if notes:
            notes_page = Notes()
            notes_frame = _frame("2cm", "14cm", "17cm", "10cm", "notes")
            notes_box = TextBox()
            notes_box.addElement(P(text=notes))
            notes_frame.addElement(notes_box)
            notes_page.addElement(notes_frame)
            page.addElement(notes_page)
    document.save(str(path))


def build_ods(path: Path, sheets: dict[str, list[list[str]]]) -> None:
    """A spreadsheet of `sheets` (name -> rows of text cells)."""
    document = OpenDocumentSpreadsheet()
    for name, rows in sheets.items():
        table = Table(name=name)
        for values in rows:
            row = TableRow()
            for value in values:
                row.addElement(_cell(value))
            table.addElement(row)
        document.spreadsheet.addElement(table)
    document.save(str(path))
