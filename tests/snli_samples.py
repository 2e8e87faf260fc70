"""Real SNLI 1.0 test hypotheses with their parses (shared by the tests of hf_posenc.tasks)."""

# Real hypotheses of the SNLI 1.0 test set (CC BY-SA 4.0) with their parses, chosen to cover each case.
SNLI_HYPOTHESES = {
    # (sentence2, sentence2_parse): (expected swap or None, subject, object)
    "vehicle": (
        "A vehicle is crossing a river.",
        "(ROOT (S (NP (DT A) (NN vehicle)) (VP (VBZ is) (VP (VBG crossing) (NP (DT a) (NN river)))) (. .)))",
        "A river is crossing a vehicle.",
    ),
    "lady": (
        "The lady has a garden",
        "(ROOT (S (NP (DT The) (NN lady)) (VP (VBZ has) (NP (DT a) (NN garden)))))",
        "A garden has the lady",
    ),
    "gymnast": (
        "A younger gymnast, wearing dark blue and white, has her right leg straight in the air.",
        "(ROOT (S (NP (NP (DT A) (JJR younger) (NN gymnast)) (, ,) (VP (VBG wearing) (ADJP (RB dark) (JJ blue) "
        "(CC and) (JJ white))) (, ,)) (VP (VBZ has) (NP (NP (PRP$ her) (JJ right) (NN leg)) (PP (RB straight) "
        "(IN in) (NP (DT the) (NN air))))) (. .)))",
        "Her right leg straight in the air, has a younger gymnast, wearing dark blue and white.",
    ),
    "female": (
        "the female is wearing her hair up",
        "(ROOT (S (NP (DT the) (NN female)) (VP (VBZ is) (VP (VBG wearing) (NP (PRP$ her) (NN hair)) (PRT (RP up))))))",
        "her hair is wearing the female up",
    ),
    "newspaper": (
        "He is reading the newspaper.",
        "(ROOT (S (NP (PRP He)) (VP (VBZ is) (VP (VBG reading) (NP (DT the) (NN newspaper)))) (. .)))",
        "The newspaper is reading him.",
    ),
    "tennis": (
        "Serina Williams plays tennis.",
        "(ROOT (S (NP (NNP Serina) (NNP Williams)) (VP (VBZ plays) (NP (NN tennis))) (. .)))",
        "Tennis plays Serina Williams.",
    ),
    "ocean": (
        "Men drive the bus into the ocean.",
        "(ROOT (S (NP (NNP Men)) (VP (VBP drive) (NP (DT the) (NN bus)) (PP (IN into) (NP (DT the) (NN ocean)))) "
        "(. .)))",
        "The bus drive Men into the ocean.",  # the parser tagged "Men" NNP, so it keeps its capital
    ),
    # No subject or no object of the main verb: skipped.
    "happy": (
        "The woman is very happy.",
        "(ROOT (S (NP (DT The) (NN woman)) (VP (VBZ is) (ADJP (RB very) (JJ happy))) (. .)))",
        None,
    ),
    "poses": (
        "A man poses in front of an ad.",
        "(ROOT (S (NP (DT A) (NN man)) (VP (VBZ poses) (PP (IN in) (NP (NP (NN front)) (PP (IN of) "
        "(NP (DT an) (NN ad)))))) (. .)))",
        None,
    ),
    "statue": (  # expletive subject
        "There is a statue that not many people seem to be interested in.",
        "(ROOT (S (NP (EX There)) (VP (VBZ is) (NP (DT a) (NN statue)) (SBAR (IN that) (S (NP (RB not) (JJ many) "
        "(NNS people)) (VP (VBP seem) (S (VP (TO to) (VP (VB be) (ADJP (JJ interested) (PP (IN in)))))))))) (. .)))",
        None,
    ),
    "stage": (  # a fragment: no S
        "A man playing guitar on stage.",
        "(ROOT (NP (NP (DT A) (NN man) (VBG playing) (NN guitar)) (PP (IN on) (NP (NN stage))) (. .)))",
        None,
    ),
    "singer": (  # copula: a predicate, not an object
        "Bruce Springsteen is a singer.",
        "(ROOT (S (NP (NNP Bruce) (NNP Springsteen)) (VP (VBZ is) (NP (DT a) (NN singer))) (. .)))",
        None,
    ),
}


def snli_pair(key: str, label: str = "entailment", index: int = 0) -> dict:
    sentence, parse, _ = SNLI_HYPOTHESES[key]
    return {
        "pairID": f"{key}-{index}",
        "sentence1": "A premise sentence about the scene.",
        "sentence2": sentence,
        "sentence2_parse": parse,
        "gold_label": label,
    }
