"""Word lists for the rule-based extractor (English)."""

from __future__ import annotations


def word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: People and pets a user talks about as "my X" (singular).
RELATIONS = word_set(
    """
    mom mum mommy mummy mama mother dad daddy papa father parent parents stepmom stepdad
    brother sister sibling wife husband spouse partner boyfriend girlfriend fiance fiancee
    fiancé fiancée son daughter kid child baby friend bestie boss manager coworker
    co-worker colleague roommate flatmate housemate neighbor neighbour grandma grandmother
    granny grandpa grandfather grandad granddad aunt auntie uncle cousin niece nephew
    therapist doctor teacher mentor coach cat dog puppy kitten pet hamster rabbit bunny
    parrot bird horse fish turtle
    """
)

#: Plurals of countable relations, for "I have two kids".
RELATION_PLURALS = word_set(
    """
    kids children sons daughters brothers sisters siblings cats dogs puppies kittens pets
    grandkids grandchildren nieces nephews cousins rabbits birds horses fish turtles
    friends parents grandparents coworkers colleagues roommates neighbors neighbours
    """
)

#: Words that may precede a relation: "my little sister", "my best friend".
RELATION_MODIFIERS = word_set(
    """
    best little big older younger baby twin step ex late old new oldest youngest eldest dear
    """
)

#: Capitalized words that are not a name after "I'm", "my sister", "X is my ...".
NOT_NAMES = word_set(
    """
    i im me my mine you your he she it its we they them him her his this that these those
    there here who what when where why how which whose someone somebody everyone everybody
    nobody anyone anything everything nothing something one all both none some any
    a an the and or but so not no yes yeah yep nope ok okay sure fine good great well
    just really very so too also still even only actually honestly literally basically
    tired sorry sad happy glad mad angry bored busy sick ill hungry thirsty sleepy lonely
    scared afraid nervous anxious excited worried stressed confused lost done back home
    here there going trying thinking feeling getting doing being having looking working
    living coming leaving staying waiting wondering hoping planning starting
    new old young single married divorced engaged pregnant retired free alone ready
    late early right wrong sure certain curious interested hopeful proud fine alright
    awake asleep alive dead okay meh hi hello hey thanks thank please sorry
    monday tuesday wednesday thursday friday saturday sunday today tomorrow tonight
    yesterday morning evening night weekend
    mom mum dad mother father sister brother wife husband friend boss god
    in on at to from with about for of by into like as than then now always never
    """
)

#: Nationalities and similar: "I'm Canadian" is a fact, not a name.
DEMONYMS = word_set(
    """
    american canadian mexican british english scottish welsh irish french german italian
    spanish portuguese dutch belgian swiss austrian swedish norwegian danish finnish
    icelandic polish czech slovak hungarian romanian bulgarian greek turkish russian
    ukrainian israeli palestinian lebanese syrian iranian iraqi egyptian moroccan
    nigerian kenyan ghanaian ethiopian african indian pakistani bangladeshi nepali
    chinese japanese korean vietnamese thai filipino indonesian malaysian singaporean
    australian kiwi brazilian argentinian argentine chilean colombian peruvian venezuelan
    cuban puerto latino latina asian european jewish muslim catholic buddhist hindu
    """
)

#: Occupations for "I'm a/an X" (the last word of X).
OCCUPATIONS = word_set(
    """
    accountant actor actress analyst architect artist assistant attorney baker banker
    barber barista bartender biologist builder butcher carpenter cashier chef chemist
    cleaner clerk coach consultant cook counselor counsellor courier dancer dentist
    designer detective developer doctor driver economist editor electrician engineer
    entrepreneur farmer firefighter freelancer gardener geologist hairdresser historian
    illustrator instructor intern janitor journalist judge lawyer lecturer librarian
    lifeguard linguist manager mechanic medic midwife miner model musician nanny nurse
    officer painter paralegal paramedic pharmacist photographer physician physicist
    physiotherapist pilot plumber poet policeman policewoman politician postman producer
    professor programmer psychiatrist psychologist receptionist reporter researcher
    salesman saleswoman scientist secretary singer soldier student surgeon tailor teacher
    technician therapist translator tutor veterinarian vet waiter waitress welder writer
    author composer filmmaker animator coder sysadmin ceo cto founder owner caregiver
    carer housewife homemaker mathematician statistician archaeologist astronomer
    """
)

#: Words that make a clause hypothetical: no fact is taken from it.
HYPOTHETICAL = word_set("if wish imagine pretend suppose supposing hypothetically maybe")

#: Pronoun-like first words that make a liked/disliked thing unclear ("I love it").
VAGUE_OBJECTS = word_set(
    """
    you u ya yourself it this that these those them him her everything nothing something
    anything everyone everybody someone somebody anybody nobody what which
    """
)

#: Adverbs allowed between "I" and a verb: "I really love".
ADVERBS = word_set(
    """
    really truly absolutely totally honestly genuinely just also still actually kinda
    definitely seriously deeply simply so do especially particularly secretly
    """
)

# -- statements (companion.memory.statements) ------------------------------------------

#: Verbs that make a first-person clause talk about the talk, a guess or a wish:
#: "I think so", "I agree", "I can't wait". No fact is kept from such a clause.
CHAT_VERBS = word_set(
    """
    think thought guess know knew hope hoped bet agree understand mean meant wonder wondered
    suppose believe imagine see hear heard say said ask asked tell told forget forgot
    remember apologize promise doubt figure reckon wish admit assume wait
    recommend suggest would could should talked chatted discussed spoke talk chat
    """
)

#: Adjectives after "I'm" that tell a mood or a reaction to the talk, not a fact:
#: "I'm glad to hear that", "I'm so tired today".
CHAT_ADJECTIVES = word_set(
    """
    glad sorry sure happy afraid excited jealous envious impressed curious interested
    thankful grateful honored pleased relieved amazed shocked surprised kidding joking
    serious positive aware good fine great ok okay well alright doing tired sad mad angry
    bored busy hungry thirsty sleepy scared nervous anxious worried stressed confused lost
    done back home here there ready late early right wrong certain hopeful proud awake
    not so just also still exhausted sick bad same annoyed frustrated overwhelmed
    starving freezing cold hot full cool awesome amazing terrible horrible bummed upset
    mess wreck joke fool idiot loser disaster kidding lucky blessed confident shy
    embarrassed offended flattered touched speechless jealous desperate stuck sore
    disappointed devastated heartbroken thrilled ecstatic delighted fascinated intrigued
    puzzled surprised afraid terrified grateful guilty ashamed hopeless helpless useless
    weird strange crazy insane silly funny boring boring nice lovely honest open
        """
)

#: "-ing" verbs that tell a lasting activity after "I'm" ("I'm studying law"), where
#: most ("I'm watching TV") tell what is happening right now.
LASTING_ING = word_set(
    """
    working studying living learning training taking dating raising expecting volunteering
    saving planning writing building renovating teaching running majoring attending
    pursuing practicing practising recovering fostering homeschooling caring retiring
    starting opening freelancing interning competing coaching managing owning renting
    considering hoping homeschooling fundraising
    """
)

#: Words that carry no content of their own, for counting what a statement says.
FUNCTION_WORDS = word_set(
    """
    user user's their they them theirs themselves i i'm i’m im i've i’ve me my mine we us our
    a an the and or but so if then than as of at by for from in into on onto to with
    without about over under up down out off too very just also really still even only
    am is are was were be been being do does did doing done having will would can could shall
    should may might must not no nor don't doesn't didn't isn't wasn't aren't weren't
    haven't hasn't can't won't there here all any some much more most lot lots bit little
    kind sort thing things stuff one ones pretty quite rather always never often sometimes usually
    actually probably definitely totally kinda lol haha yes yeah oh well get got gets
    """
)

#: What "my X" may be, besides people and pets, for a short statement to count:
#: "my job is stressful", "my life is boring".
MY_THINGS = word_set(
    """
    job work career boss company business life house home apartment flat car family kids
    children parents hobby hobbies passion health back knee knees leg legs arm heart
    birthday dream goal goals garden degree major school college university class classes
    team band church town city hometown neighborhood wedding marriage divorce diet doctor
    """
)

#: Relations "he" may stand for; "she" for FEMALE; the rest of RELATIONS for either.
MALE = word_set(
    """
    dad daddy papa father stepdad brother husband boyfriend fiance fiancé son grandpa
    grandfather grandad granddad uncle nephew
    """
)
FEMALE = word_set(
    """
    mom mum mommy mummy mama mother stepmom sister wife girlfriend fiancee fiancée daughter
    grandma grandmother granny aunt auntie niece
    """
)
